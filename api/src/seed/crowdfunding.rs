//! Demo campaigns, donations and updates.
#[allow(unused_imports)]
use super::*;

/// Campaigns of resident organizations in every status, with donations recorded through the
/// service (so totals and receipts are what confirmations produce), then spread out in time.
/// Some donors are masked or anonymous, a few pledges are unconfirmed and one is refunded.
pub async fn crowdfunding(ctx: Ctx<'_>, rng: &mut StdRng) -> AppResult<usize> {
    let db = ctx.db;
    use crate::service::crowdfunding::{self as cf, BudgetLineInput, CampaignAction, Donor, NewCampaign, NewDonation};
    use entity::campaign::CampaignStatus;
    use entity::donation::{self, DisplayMode, DonationChannel};
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, QueryFilter};

    let residents = organizations_at(db, &[Stage::Resident], Some(8)).await?;
    if residents.is_empty() {
        return Ok(0);
    }
    let partner = identity::create_api_key(
        ctx,
        &actor(),
        identity::NewApiKey::secret("公益平台对接（演示）", &[identity::ApiScope::Donate], None),
        0,
    )
    .await?;
    let demo_donor = identity::account_by_email(db, "donor@demo.incubase.cn").await?;
    let now = Utc::now();
    /// (title, goal in yuan, status, donations, story, beneficiaries, budget lines in yuan)
    type Plan = (&'static str, i64, CampaignStatus, usize, &'static str, &'static str, &'static [(&'static str, i64)]);
    let plans: [Plan; 7] = [
        (
            "困境儿童课后陪伴计划",
            30_000,
            CampaignStatus::Active,
            48,
            "为思明区 40 名困境儿童提供每周三次的课后陪伴、作业辅导和心理支持。",
            "思明区困境儿童及其家庭",
            &[("社工及志愿者补贴", 18_000), ("学习用品与图书", 8_000), ("家访交通", 4_000)],
        ),
        (
            "单亲妈妈就业技能培训",
            25_000,
            CampaignStatus::Active,
            36,
            "开设家政、电商和育婴师培训班，帮助单亲妈妈取得职业资格、稳定就业。",
            "湖里区、集美区单亲母亲",
            &[("培训课时费", 15_000), ("考证费用", 6_000), ("托育支持", 4_000)],
        ),
        (
            "乡村女性两癌筛查关爱行动",
            12_000,
            CampaignStatus::Active,
            60,
            "为同安、翔安农村妇女提供免费宫颈癌、乳腺癌筛查和健康讲座。",
            "同安区、翔安区农村妇女",
            &[("筛查费用", 10_000), ("健康讲座", 2_000)],
        ),
        (
            "反家暴法律援助热线",
            20_000,
            CampaignStatus::Active,
            20,
            "维持 24 小时反家暴咨询热线，为受害妇女提供法律咨询和庇护转介。",
            "遭受家庭暴力的妇女儿童",
            &[("律师值班补贴", 15_000), ("热线运维", 5_000)],
        ),
        (
            "海峡两岸妇女手工艺交流展",
            10_000,
            CampaignStatus::Ended,
            30,
            "邀请台湾妇女手工艺者来厦交流，展销两岸妇女手作，收益用于妇女创业扶持。",
            "两岸妇女手工艺创业者",
            &[("展务费用", 6_000), ("交流差旅", 4_000)],
        ),
        (
            "留守儿童暑期成长营",
            40_000,
            CampaignStatus::PendingReview,
            0,
            "暑期为留守儿童开设为期两周的成长营，安排安全教育、阅读和亲情视频通话。",
            "海沧区留守儿童",
            &[("营地费用", 28_000), ("课程与物资", 12_000)],
        ),
        (
            "社区妈妈互助托育点",
            30_000,
            CampaignStatus::Draft,
            0,
            "在社区建立妈妈互助托育点，缓解双职工家庭的托育压力。",
            "双职工家庭",
            &[("场地改造", 20_000), ("玩教具", 10_000)],
        ),
    ];
    const AMOUNTS: [i64; 10] = [2_000, 5_000, 6_600, 8_800, 10_000, 20_000, 30_000, 50_000, 52_000, 100_000];
    const MESSAGES: [&str; 8] =
        ["", "加油！", "愿孩子们健康成长", "一点心意", "支持巾帼公益", "希望更多妈妈找到工作", "", "两岸一家亲"];
    let mut seeded = 0;
    for (i, (title, goal_yuan, status, donations, story, beneficiaries, budget)) in plans.into_iter().enumerate() {
        let org = residents[i % residents.len()];
        let started = now - Duration::days(rng.random_range(10..60));
        let ends = if status == CampaignStatus::Ended {
            now + Duration::days(1)
        } else {
            now + Duration::days(rng.random_range(20..90))
        };
        let record = cf::create(
            ctx,
            &actor(),
            NewCampaign {
                organization_id: org,
                title: title.into(),
                story: Some(story.into()),
                cover_url: Some(format!("https://img.example.org.cn/campaigns/{}.jpg", i + 1)),
                goal_fen: goal_yuan * 100,
                starts_at: started,
                ends_at: ends,
                beneficiaries: Some(beneficiaries.into()),
                fundraising_qualification: Some("厦门市妇女儿童公益基金会（具有公开募捐资格，厦民〔2019〕8号）".into()),
                filing_number: Some(format!(
                    "53350200MJ0{:07}-{}-{:03}",
                    rng.random_range(1_000_000..9_999_999),
                    now.format("%Y"),
                    i + 1
                )),
                budget: budget
                    .iter()
                    .map(|(item, yuan)| BudgetLineInput { item: (*item).into(), amount_fen: yuan * 100 })
                    .collect(),
                created_by_account_id: None,
            },
        )
        .await?;
        let id = record.campaign.id;
        if status == CampaignStatus::Draft {
            seeded += 1;
            continue;
        }
        cf::change_status(ctx, &actor(), id, CampaignAction::Submit, None).await?;
        if status == CampaignStatus::PendingReview {
            seeded += 1;
            continue;
        }
        cf::change_status(ctx, &actor(), id, CampaignAction::Approve, Some("材料齐全，同意上线".into())).await?;
        for n in 0..donations {
            let mode = match rng.random_range(0..8) {
                0 | 1 => DisplayMode::Anonymous,
                2 | 3 => DisplayMode::Masked,
                _ => DisplayMode::Public,
            };
            let name =
                format!("{}{}", SURNAMES[rng.random_range(0..SURNAMES.len())], GIVEN[rng.random_range(0..GIVEN.len())]);
            let donor = match &demo_donor {
                Some(account) if n % 12 == 5 => {
                    Donor::Account { id: account.id, display_name: account.display_name.clone() }
                }
                _ => Donor::Partner { key_id: partner.key.id },
            };
            let channel = if rng.random_range(0..5) == 0 {
                DonationChannel::BankTransfer
            } else {
                DonationChannel::OnlinePlatform
            };
            let d = cf::donate(
                ctx,
                &actor(),
                &donor,
                NewDonation {
                    campaign_id: id,
                    amount_fen: AMOUNTS[rng.random_range(0..AMOUNTS.len())],
                    channel,
                    external_reference: Some(format!(
                        "PAY{}{:06}",
                        now.format("%Y%m%d"),
                        rng.random_range(0..1_000_000)
                    )),
                    donor_name: Some(name),
                    display_mode: mode,
                    message: Some(MESSAGES[rng.random_range(0..MESSAGES.len())].into()),
                    client_key: format!("seed-{id}-{n}"),
                },
            )
            .await?;
            // The last few stay pledged, waiting for reconciliation.
            if n + 3 < donations {
                cf::confirm(ctx, &actor(), d.id, None).await?;
                if n == 7 {
                    cf::refund(ctx, &actor(), d.id, None, Some("捐赠人重复支付，原路退回".into())).await?;
                }
            }
            // Spread the records over the campaign's run, oldest first.
            let until = if status == CampaignStatus::Ended { now - Duration::days(3) } else { now };
            let at = started
                + Duration::minutes(((until - started).num_minutes() * (n as i64 + 1)) / (donations as i64 + 2));
            donation::Entity::update_many()
                .col_expr(donation::Column::CreatedAt, Expr::val(at))
                .filter(donation::Column::Id.eq(d.id))
                .exec(db)
                .await?;
        }
        if status == CampaignStatus::Ended {
            cf::change_status(ctx, &actor(), id, CampaignAction::End, None).await?;
            entity::campaign::Entity::update_many()
                .col_expr(entity::campaign::Column::EndsAt, Expr::val(now - Duration::days(3)))
                .filter(entity::campaign::Column::Id.eq(id))
                .exec(db)
                .await?;
        }
        seeded += 1;
    }
    Ok(seeded)
}
