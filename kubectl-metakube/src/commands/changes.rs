//! `changes TYPE/NAME [--since 1h]`: what changed near a target — its rollout revisions, and
//! for a live cluster what the daemon's history saw change since it started keeping one.

use std::io::Write;

use metakube_shared::{ChangesRequest, ChangesResponse, TargetRef};

use crate::cli::{ChangesArgs, GlobalArgs};
use crate::render;

/// Collects as `diagnose` does, asks the daemon, prints.
pub async fn run(g: &GlobalArgs, a: &ChangesArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let target = TargetRef::parse(&a.target, a.name.as_deref())?;
    let (snapshot, _) =
        super::diagnose::collect_snapshot(g, &target, a.from_dump.as_deref()).await?;
    let client = super::daemon(g).await?;
    let r: ChangesResponse = client
        .post(
            "/v1/changes",
            &ChangesRequest {
                snapshot,
                since_s: a.since.map(|s| s.as_secs()),
            },
        )
        .await?;
    render::changes(out, &r, a.output)?;
    out.flush()?;
    Ok(())
}
