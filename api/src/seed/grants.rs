//! Demo venture philanthropy: grant rounds, proposals, reviews, service projects and their records.
#[allow(unused_imports)]
use super::*;

pub(super) const PROPOSAL_THEMES: [(&str, &str); 12] = [
    ("“护苗”儿童防性侵教育进社区", "儿童自我保护意识薄弱，家长缺乏相关知识"),
    ("“她力量”困境妇女就业赋能计划", "单亲及困境妇女就业技能不足、社会支持缺乏"),
    ("“家和万事兴”婚姻家庭调解服务", "婚姻家庭矛盾调解需求增长，专业力量不足"),
    ("“暖巢”留守儿童周末课堂", "外来务工家庭子女课后无人看护"),
    ("“心晴”女性心理健康支持小组", "产后及更年期女性心理支持服务缺乏"),
    ("“银发伴夕阳”社区长者关爱", "独居长者社会参与少、精神慰藉不足"),
    ("“书香家庭”亲子共读计划", "家庭教育指导资源分布不均"),
    ("“法护她”妇女维权法律援助", "妇女维权渠道不畅，法律知识欠缺"),
    ("“巾帼创客”女性创业孵化", "女性创业者缺乏启动资源和陪伴支持"),
    ("“两岸同心”妇女交流工作坊", "两岸妇女社会工作交流缺少常态化平台"),
    ("“阳光成长”特殊儿童家庭喘息服务", "特殊儿童家庭照护压力大"),
    ("“社区妈妈”互助网络建设", "新市民妈妈社区融入困难"),
];

pub(super) const STREET_OFFICES: [&str; 8] = [
    "思明区嘉莲街道办事处",
    "思明区莲前街道办事处",
    "湖里区殿前街道办事处",
    "湖里区金山街道办事处",
    "集美区侨英街道办事处",
    "海沧区新阳街道办事处",
    "同安区大同街道办事处",
    "翔安区新店街道办事处",
];
pub(super) const COMMUNITIES: [&str; 6] = [
    "思明区莲花五村社区居委会",
    "湖里区枋湖社区居委会",
    "集美区杏林湾社区居委会",
    "海沧区海虹社区居委会",
    "思明区前埔北社区居委会",
    "湖里区禾山社区居委会",
];
pub(super) const FAMILY_PROJECTS: [&str; 8] = [
    "妇女儿童关爱服务项目",
    "家庭教育指导服务项目",
    "亲子成长陪伴项目",
    "困境妇女儿童帮扶项目",
    "婚姻家庭辅导服务项目",
    "儿童友好社区建设项目",
    "妇女议事会能力建设项目",
    "“四点半课堂”托管服务项目",
];
pub(super) const OTHER_PROJECTS: [(&str, &str, entity::service_project::PurchaserKind); 5] = [
    ("厦门市妇女联合会", "巾帼志愿服务项目", entity::service_project::PurchaserKind::WomensFederation),
    ("厦门市民政局", "社区居家养老服务项目", entity::service_project::PurchaserKind::GovernmentDepartment),
    ("厦门市妇女联合会", "社会组织孵化培育项目", entity::service_project::PurchaserKind::WomensFederation),
    ("思明区民政局", "社区治理创新服务项目", entity::service_project::PurchaserKind::GovernmentDepartment),
    ("湖里区民政局", "新市民融入服务项目", entity::service_project::PurchaserKind::GovernmentDepartment),
];
pub(super) const ACTIVITIES: [&str; 8] = [
    "亲子阅读会",
    "女性健康讲座",
    "家庭教育沙龙",
    "儿童安全小课堂",
    "妇女手工技能培训",
    "心理支持小组",
    "法律知识进社区",
    "长者探访",
];

/// Demo venture philanthropy and funded projects: a "Phoenix Appointment" (凤凰之约) round
/// with proposals, reviews and awards, and 36 government-purchased projects worth 5.76
/// million yuan whose service records add up to 40,000+ person-times, over 70% of them bought
/// by street offices and communities for women, children and families.
pub async fn grants(ctx: Ctx<'_>, rng: &mut StdRng) -> AppResult<()> {
    let db = ctx.db;
    use crate::service::grants::{self as g, BudgetLine, PeopleByGroup, ProposalInput, ReviewDraft, RoundInput};
    use crate::service::projects::{self as p, Funding, NewProject, NewServiceRecord};
    use entity::service_project::PurchaserKind;

    let orgs = organizations_at(db, &[Stage::Resident, Stage::Graduated, Stage::Incubating], None).await?;
    if orgs.is_empty() {
        return Ok(());
    }
    let mut reviewers = Vec::new();
    if let Some(first) = identity::account_by_email(db, "reviewer@demo.incubase.cn").await? {
        reviewers.push(first.id);
    }
    for (email, name) in
        [("reviewer2@demo.incubase.cn", "社工督导评审"), ("reviewer3@demo.incubase.cn", "财务评审专家")]
    {
        reviewers
            .push(identity::create_account(ctx, &actor(), email, DEMO_PASSWORD, name, &[Role::Reviewer]).await?.id);
    }

    // The round, open while proposals go in, then moved to its real (past) timeline.
    let now = Utc::now();
    let year = crate::service::impact::local_date(now).format("%Y").to_string();
    let round = g::create_round(
        ctx,
        &actor(),
        RoundInput {
            title: format!("{year}年“凤凰之约”妇女儿童家庭公益创投大赛"),
            description: "市妇联社会治理创新服务基地年度公益创投，资助服务妇女、儿童和家庭的优秀社会组织项目。".into(),
            budget_fen: 100_000_000,
            per_proposal_cap_fen: 10_000_000,
            opens_at: now - Duration::days(120),
            closes_at: now + Duration::days(1),
            review_ends_at: now + Duration::days(2),
            results_at: now + Duration::days(3),
            eligible_stages: vec![Stage::Incubating, Stage::Resident, Stage::Graduated],
            rubric: g::Rubric {
                min_score: 0,
                max_score: 10,
                criteria: vec![
                    g::Criterion { key: "need".into(), name: "需求评估与问题分析".into(), weight: 25 },
                    g::Criterion { key: "design".into(), name: "项目设计与可行性".into(), weight: 30 },
                    g::Criterion { key: "capacity".into(), name: "机构执行能力".into(), weight: 20 },
                    g::Criterion { key: "impact".into(), name: "预期成效与可持续性".into(), weight: 25 },
                ],
            },
        },
    )
    .await?;
    let mut ranked = Vec::new();
    for (i, (title, problem)) in PROPOSAL_THEMES.iter().enumerate() {
        let org = orgs[i % orgs.len()];
        let requested = rng.random_range(5..=10) * 1_000_000;
        let proposal = g::create_proposal(
            ctx,
            &actor(),
            round.round.id,
            org,
            None,
            ProposalInput {
                title: (*title).into(),
                summary: format!("{title}：以专业社会工作方法回应社区需求。"),
                problem: (*problem).into(),
                plan: "需求调研—小组与个案服务—社区活动—成效评估，周期十二个月。".into(),
                beneficiaries: PeopleByGroup {
                    women: rng.random_range(80..300),
                    children: rng.random_range(50..200),
                    families: rng.random_range(20..100),
                    elderly: rng.random_range(0..50),
                    others: 0,
                },
                requested_fen: requested,
                budget_lines: vec![
                    BudgetLine { item: "人员劳务".into(), amount_fen: requested * 6 / 10 },
                    BudgetLine { item: "活动物料".into(), amount_fen: requested * 3 / 10 },
                    BudgetLine { item: "宣传与评估".into(), amount_fen: requested - requested * 9 / 10 },
                ],
                attachments: vec![format!("https://files.example.org.cn/phoenix/{year}/proposal-{}.pdf", i + 1)],
            },
        )
        .await?;
        let id = proposal.proposal.id;
        g::submit_proposal(ctx, &actor(), id).await?;
        let mut total = 0.0;
        for reviewer in &reviewers {
            g::assign_reviewer(ctx, &actor(), id, *reviewer).await?;
            let base: i32 = rng.random_range(5..=9);
            let scores: Vec<(String, i32)> = ["need", "design", "capacity", "impact"]
                .iter()
                .map(|k| ((*k).to_owned(), (base + rng.random_range(-1..=1)).clamp(0, 10)))
                .collect();
            let review = g::save_review(
                ctx,
                &actor(),
                *reviewer,
                id,
                ReviewDraft { scores, comment: Some("需求分析扎实，建议细化成效指标。".into()) },
                true,
            )
            .await?;
            total += round.rubric.weighted_mean(&review.scores).unwrap_or(0.0);
        }
        ranked.push((total, id, requested));
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut awarded = Vec::new();
    let mut remaining = round.round.budget_fen;
    for (_, id, requested) in &ranked {
        let amount = (*requested * 9 / 10).min(remaining);
        if awarded.len() < 8 && amount > 0 {
            g::award(ctx, &actor(), *id, amount, Some("经专家评审，予以资助。".into())).await?;
            remaining -= amount;
            awarded.push(*id);
        } else {
            g::decline(ctx, &actor(), *id, Some("本轮未获资助，欢迎下一年度再次申报。".into())).await?;
        }
    }
    g::update_round(
        ctx,
        &actor(),
        round.round.id,
        g::RoundPatch {
            opens_at: Some(now - Duration::days(120)),
            closes_at: Some(now - Duration::days(60)),
            review_ends_at: Some(now - Duration::days(30)),
            results_at: Some(now - Duration::days(20)),
            ..Default::default()
        },
    )
    .await?;
    let today = crate::service::impact::local_date(now);
    for id in awarded {
        let proposal = g::find_proposal(db, id).await?;
        p::create_project(
            ctx,
            &actor(),
            NewProject {
                organization_id: None,
                title: proposal.proposal.title.clone(),
                description: proposal.proposal.summary.clone(),
                funding: Funding::Award { proposal_id: id },
                starts_on: today - Duration::days(15),
                ends_on: today + Duration::days(350),
                budget_lines: {
                    let fen = proposal.proposal.awarded_fen.unwrap_or(0);
                    vec![
                        BudgetLine { item: "人员劳务".into(), amount_fen: fen * 6 / 10 },
                        BudgetLine { item: "活动物料".into(), amount_fen: fen - fen * 6 / 10 },
                    ]
                },
            },
        )
        .await?;
    }

    // 36 government purchases, 160,000 yuan on average: pairs around the mean keep the total
    // at exactly 5.76 million yuan. 26 of them (72%) are bought by street offices and
    // communities for women, children and families.
    let mut amounts = Vec::with_capacity(36);
    for _ in 0..18 {
        let d: i64 = rng.random_range(0..=60) * 1_000;
        amounts.push((160_000 + d) * 100);
        amounts.push((160_000 - d) * 100);
    }
    for (i, contract_fen) in amounts.into_iter().enumerate() {
        let (purchaser, kind, title, family) = if i < 26 {
            let title = FAMILY_PROJECTS[i % FAMILY_PROJECTS.len()];
            if i % 3 == 2 {
                (COMMUNITIES[i % COMMUNITIES.len()], PurchaserKind::Community, title, true)
            } else {
                (STREET_OFFICES[i % STREET_OFFICES.len()], PurchaserKind::StreetOffice, title, true)
            }
        } else {
            let (purchaser, title, kind) = OTHER_PROJECTS[i % OTHER_PROJECTS.len()];
            (purchaser, kind, title, false)
        };
        let starts_on = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or(today) + Duration::days(rng.random_range(0..540));
        let ends_on = starts_on + Duration::days(364);
        let place = purchaser.trim_end_matches("办事处").trim_end_matches("居委会");
        let project = p::create_project(
            ctx,
            &actor(),
            NewProject {
                organization_id: Some(orgs[(i * 7) % orgs.len()]),
                title: format!("{place}{title}"),
                description: format!("{purchaser}购买的社会工作服务。"),
                funding: Funding::GovernmentPurchase {
                    purchaser: purchaser.into(),
                    purchaser_kind: kind,
                    contract_number: format!("XMFL-GM-{}-{:03}", starts_on.format("%Y"), i + 1),
                    contract_fen,
                },
                starts_on,
                ends_on,
                budget_lines: vec![
                    BudgetLine { item: "社工人员经费".into(), amount_fen: contract_fen * 6 / 10 },
                    BudgetLine { item: "服务活动经费".into(), amount_fen: contract_fen * 3 / 10 },
                    BudgetLine { item: "管理与评估".into(), amount_fen: contract_fen - contract_fen * 9 / 10 },
                ],
            },
        )
        .await?;
        let id = project.project.id;
        if starts_on <= today {
            p::record_disbursement(ctx, &actor(), id, contract_fen / 2, starts_on, Some("首期款".into())).await?;
        }
        if ends_on <= today {
            p::record_disbursement(
                ctx,
                &actor(),
                id,
                contract_fen - contract_fen / 2,
                ends_on,
                Some("尾款（结项评估合格）".into()),
            )
            .await?;
        }
        let goal = p::add_goal(ctx, &actor(), id, "服务人次", "人次", 1_000).await?;
        let mut served = 0;
        for month in 0..12 {
            let served_on = starts_on + Duration::days(month * 30 + rng.random_range(0..25));
            if served_on > today || served_on > ends_on {
                break;
            }
            let people = if family {
                PeopleByGroup {
                    women: rng.random_range(35..65),
                    children: rng.random_range(25..55),
                    families: rng.random_range(8..22),
                    elderly: rng.random_range(0..8),
                    others: rng.random_range(0..6),
                }
            } else {
                PeopleByGroup {
                    women: rng.random_range(15..35),
                    children: rng.random_range(0..10),
                    families: rng.random_range(0..10),
                    elderly: rng.random_range(30..60),
                    others: rng.random_range(10..30),
                }
            };
            served += people.total();
            p::add_service_record(
                ctx,
                &actor(),
                id,
                NewServiceRecord {
                    served_on,
                    activity: ACTIVITIES[rng.random_range(0..ACTIVITIES.len())].into(),
                    people,
                    location: format!("{place}社区服务站"),
                },
            )
            .await?;
        }
        if served > 0 {
            p::record_goal_progress(ctx, &actor(), goal.id, served, Some("按月服务记录汇总".into()), today).await?;
        }
    }
    Ok(())
}
