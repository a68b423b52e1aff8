//! Ranking proposals by their reviews.
#[allow(unused_imports)]
use super::*;

#[derive(Clone, Debug)]
pub struct RankedProposal {
    pub proposal: ProposalRecord,
    pub submitted_reviews: usize,
    /// Mean over the submitted reviews of each review's weighted mean.
    pub weighted_mean: Option<f64>,
    pub lowest: Option<f64>,
    pub highest: Option<f64>,
    /// Highest − lowest reviewer score: large values mean the reviewers disagree.
    pub spread: Option<f64>,
    /// Mean score per criterion key.
    pub by_criterion: Vec<(String, f64)>,
}

pub const MAX_RANKED: u64 = 1_000;

pub async fn ranking(db: &impl ConnectionTrait, round_id: i64) -> AppResult<Vec<RankedProposal>> {
    let round = find_round(db, round_id).await?;
    let proposals = proposal::Entity::find()
        .filter(proposal::Column::RoundId.eq(round_id))
        .filter(proposal::Column::Status.is_in([
            ProposalStatus::Submitted,
            ProposalStatus::UnderReview,
            ProposalStatus::Awarded,
            ProposalStatus::Declined,
        ]))
        .order_by_asc(proposal::Column::Id)
        .limit(MAX_RANKED)
        .all(db)
        .await?;
    let ids: Vec<i64> = proposals.iter().map(|p| p.id).collect();
    let mut reviews = reviews_of(db, &ids).await?;
    let mut ranked: Vec<RankedProposal> = proposals
        .into_iter()
        .map(|p| {
            let submitted: Vec<ReviewRecord> = reviews
                .remove(&p.id)
                .unwrap_or_default()
                .into_iter()
                .filter(|r| r.review.status == ReviewStatus::Submitted)
                .collect();
            let means: Vec<f64> = submitted.iter().filter_map(|r| round.rubric.weighted_mean(&r.scores)).collect();
            let lowest = means.iter().copied().reduce(f64::min);
            let highest = means.iter().copied().reduce(f64::max);
            let weighted_mean = (!means.is_empty()).then(|| means.iter().sum::<f64>() / means.len() as f64);
            let by_criterion = round
                .rubric
                .criteria
                .iter()
                .filter_map(|c| {
                    let values: Vec<f64> =
                        submitted.iter().filter_map(|r| r.scores.get(&c.key)).map(|s| f64::from(*s)).collect();
                    (!values.is_empty()).then(|| (c.key.clone(), values.iter().sum::<f64>() / values.len() as f64))
                })
                .collect();
            RankedProposal {
                proposal: ProposalRecord::from_model(p),
                submitted_reviews: submitted.len(),
                weighted_mean,
                lowest,
                highest,
                spread: lowest.zip(highest).map(|(l, h)| h - l),
                by_criterion,
            }
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.weighted_mean
            .unwrap_or(f64::NEG_INFINITY)
            .total_cmp(&a.weighted_mean.unwrap_or(f64::NEG_INFINITY))
            .then(a.proposal.proposal.id.cmp(&b.proposal.proposal.id))
    });
    Ok(ranked)
}
