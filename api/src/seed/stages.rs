//! Moving a demo organization along its stages.
#[allow(unused_imports)]
use super::*;

/// Walks an organization to `stage` through allowed transitions, spaced out in time.
pub(super) async fn advance(ctx: Ctx<'_>, id: i64, stage: Stage, mut at: chrono::DateTime<Utc>) -> AppResult<()> {
    let steps = path_to(stage);
    let remaining = (Utc::now() - at).num_days().max(steps.len() as i64 + 1);
    let gap = Duration::days(remaining / (steps.len() as i64 + 1));
    for step in steps {
        at += gap;
        let note = match step {
            Stage::Applied => "提交入驻孵化申请",
            Stage::Incubating => "通过评审，进入孵化期",
            Stage::Resident => "孵化期满考核合格，入驻基地",
            Stage::Graduated => "完成孵化，出壳独立运营",
            _ => "",
        };
        organization::transition(
            ctx,
            &actor(),
            StageChange { organization_id: id, to: *step, note: Some(note.into()), occurred_at: Some(at) },
        )
        .await?;
    }
    Ok(())
}
