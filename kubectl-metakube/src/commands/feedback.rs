//! `feedback ID --fixed|--not-fixed`.

use anyhow::Context;
use metakube_shared::{FeedbackOutcome, FeedbackRequest, FeedbackResponse, ObjectRef, TargetRef};

use crate::cli::{FeedbackArgs, GlobalArgs};

/// Sends feedback; the daemon stores it durably before answering.
pub async fn run(g: &GlobalArgs, a: &FeedbackArgs) -> anyhow::Result<()> {
    let cause = match &a.cause {
        Some(c) => {
            let t = TargetRef::parse_any(c, None).context("--cause")?;
            // Without -n the daemon places a namespaced cause in the diagnosis' namespace.
            Some(match g.namespace.as_deref() {
                Some(ns) => t.in_namespace(ns),
                None => ObjectRef {
                    kind: t.kind,
                    namespace: None,
                    name: t.name,
                },
            })
        }
        None => None,
    };
    let req = FeedbackRequest {
        diagnosis_id: a.id.clone(),
        outcome: if a.fixed {
            FeedbackOutcome::Fixed
        } else {
            FeedbackOutcome::NotFixed
        },
        cause,
        reason: a.reason.clone(),
        note: a.note.clone(),
        category: a.category,
        fix_command: a.fix_command.clone(),
        replace: a.replace,
    };
    let client = super::daemon(g).await?;
    let r: FeedbackResponse = client.post("/v1/feedback", &req).await?;
    if r.unchanged {
        println!(
            "feedback for {} was already recorded as given; nothing changed",
            r.diagnosis_id
        );
        return Ok(());
    }
    match r.episode {
        Some(e) => println!(
            "feedback for {} recorded; remembered as episode {e}",
            r.diagnosis_id
        ),
        None => println!("feedback for {} recorded", r.diagnosis_id),
    }
    if let Some(l) = &r.learned {
        println!("{l}");
    }
    Ok(())
}
