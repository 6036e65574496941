//! `completion bash|zsh|fish`.

use clap::CommandFactory;

use crate::cli::Cli;

/// Prints completions for `shell` to stdout, for the `kubectl-metakube` executable (kubectl
/// 1.26+ completes plugins through it).
pub fn run(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    let mut cmd = Cli::command().bin_name("kubectl-metakube");
    clap_complete::generate(shell, &mut cmd, "kubectl-metakube", out);
}

#[cfg(test)]
mod tests {
    #[test]
    fn bash_completion_completes_the_plugin_executable() {
        let mut out = Vec::new();
        super::run(clap_complete::Shell::Bash, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with("complete -F")
                    && l.trim_end().ends_with(" kubectl-metakube")),
            "{}",
            &text[..200.min(text.len())]
        );
        assert!(text.contains("diagnose"));
    }
}
