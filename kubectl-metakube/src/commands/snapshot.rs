//! `snapshot TYPE/NAME --out DIR`: what a diagnosis would see, in the dump layout.

use metakube_shared::TargetRef;

use crate::cli::{GlobalArgs, SnapshotArgs};
use crate::collect::write::write_dump;

/// Collects and writes.
pub async fn run(g: &GlobalArgs, a: &SnapshotArgs) -> anyhow::Result<()> {
    let target = TargetRef::parse(&a.target, a.name.as_deref())?;
    let (snap, _) = super::diagnose::collect_snapshot(g, &target, a.from_dump.as_deref()).await?;
    write_dump(&snap, &a.out)?;
    eprintln!(
        "metakube: wrote {} objects and {} logs to {} (replay: kubectl metakube diagnose {}/{} -n {} --from-dump {})",
        snap.objects.len(),
        snap.logs.len(),
        a.out.display(),
        target.kind.to_ascii_lowercase(),
        target.name,
        snap.meta.namespace,
        a.out.display()
    );
    Ok(())
}
