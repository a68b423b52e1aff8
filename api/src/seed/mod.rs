//! `seed-demo`: a base that looks like the real one — about 20 resident organizations and the
//! 136-member liaison network, plus some incubating, applied, graduated and exited ones, each
//! with a stage history that went through the real transitions.
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use entity::event::EventKind;
use entity::organization::{OrganizationKind, Stage};
use entity::organization_focus_area::FocusArea;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{EntityTrait, PaginatorTrait, TransactionTrait};

use crate::error::AppResult;
use crate::events::Actor;
use crate::service::Ctx;
use crate::service::credit_code;
use crate::service::identity::{self, Role};
use crate::service::organization::{self, NewOrganization, StageChange};
use entity::membership::MemberRole;

/// Who the seed's writes are recorded as in the event log.
fn actor() -> Actor {
    Actor::cli("seed-demo")
}

const DISTRICTS: [(&str, &str); 6] = [
    ("思明区", "350203"),
    ("湖里区", "350206"),
    ("集美区", "350211"),
    ("海沧区", "350205"),
    ("同安区", "350212"),
    ("翔安区", "350213"),
];
const THEMES: [&str; 30] = [
    "巾帼",
    "阳光",
    "馨悦",
    "同心",
    "康乃馨",
    "向日葵",
    "木棉花",
    "凤凰花",
    "白鹭",
    "启航",
    "善水",
    "暖心",
    "彩虹",
    "禾苗",
    "春晖",
    "晨曦",
    "知音",
    "和美",
    "益家",
    "筑梦",
    "海燕",
    "心语",
    "映山红",
    "百合",
    "紫荆",
    "明月",
    "鹭岛",
    "绿荫",
    "繁星",
    "萤火虫",
];
const FOCUS_WORDS: [(&str, &[FocusArea]); 10] = [
    ("妇女儿童", &[FocusArea::Women, FocusArea::Children]),
    ("家庭", &[FocusArea::Family]),
    ("亲子", &[FocusArea::Family, FocusArea::Children]),
    ("女性", &[FocusArea::Women]),
    ("婚姻家庭", &[FocusArea::Family, FocusArea::Women]),
    ("儿童", &[FocusArea::Children, FocusArea::Education]),
    ("心理", &[FocusArea::MentalHealth, FocusArea::Women]),
    ("法律援助", &[FocusArea::LegalAid, FocusArea::Women]),
    ("长者", &[FocusArea::Elderly, FocusArea::Community]),
    ("女性创业", &[FocusArea::Women, FocusArea::Employment]),
];
const SUFFIXES: [(&str, OrganizationKind); 6] = [
    ("社会工作服务中心", OrganizationKind::SocialServiceAgency),
    ("服务中心", OrganizationKind::SocialServiceAgency),
    ("发展中心", OrganizationKind::SocialServiceAgency),
    ("促进会", OrganizationKind::SocialGroup),
    ("协会", OrganizationKind::SocialGroup),
    ("志愿服务队", OrganizationKind::CommunityGroup),
];
const SURNAMES: [&str; 16] =
    ["陈", "林", "黄", "张", "李", "王", "吴", "刘", "蔡", "杨", "郑", "许", "谢", "洪", "苏", "曾"];
const GIVEN: [&str; 16] = [
    "丽华", "秀英", "美玲", "晓燕", "雅婷", "淑芬", "静怡", "慧敏", "佳颖", "春梅", "海燕", "玉兰", "思琪", "雪芳",
    "婉清", "桂香",
];

/// How many organizations of each stage the demo base holds.
const PLAN: [(Stage, usize); 6] = [
    (Stage::Resident, 20),
    (Stage::Incubating, 6),
    (Stage::Applied, 4),
    (Stage::Graduated, 8),
    (Stage::Exited, 2),
    (Stage::Liaison, 136),
];

fn path_to(stage: Stage) -> &'static [Stage] {
    use Stage::*;
    match stage {
        Liaison => &[],
        Applied => &[Applied],
        Incubating => &[Applied, Incubating],
        Resident => &[Applied, Incubating, Resident],
        Graduated => &[Applied, Incubating, Resident, Graduated],
        Exited => &[Exited],
    }
}

fn credit_code_for(rng: &mut StdRng, division: &str, kind: OrganizationKind) -> Option<String> {
    let category = match kind {
        OrganizationKind::SocialGroup => '1',
        OrganizationKind::SocialServiceAgency => '2',
        OrganizationKind::Foundation => '3',
        OrganizationKind::CommunityGroup => return None,
    };
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    let body: String = (0..9).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    let first17 = format!("5{category}{division}{body}");
    credit_code::check_char(&first17).map(|c| format!("{first17}{c}"))
}

/// The ids of the organizations at one of `stages`, oldest first, at most `limit` of them.
async fn organizations_at(
    db: &impl sea_orm::ConnectionTrait,
    stages: &[Stage],
    limit: Option<u64>,
) -> AppResult<Vec<i64>> {
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
    let orgs = entity::organization::Entity::find()
        .filter(entity::organization::Column::Stage.is_in(stages.iter().cloned()))
        .order_by_asc(entity::organization::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    Ok(orgs.into_iter().map(|o| o.id).collect())
}

/// Password of every demo account. Demo data only: never use seed-demo in production.
pub const DEMO_PASSWORD: &str = "incubase-demo-2026";

async fn demo_accounts(ctx: Ctx<'_>, owner_of: i64) -> AppResult<()> {
    for (email, name, roles) in [
        ("admin@demo.incubase.cn", "基地管理员", vec![Role::Admin]),
        ("manager@demo.incubase.cn", "基地运营经理", vec![Role::Manager]),
        ("reviewer@demo.incubase.cn", "公益创投评审", vec![Role::Reviewer]),
        ("donor@demo.incubase.cn", "爱心捐赠人", vec![Role::Donor]),
        ("member@demo.incubase.cn", "社会组织负责人", vec![Role::Donor]),
    ] {
        identity::create_account(ctx, &actor(), email, DEMO_PASSWORD, name, &roles).await?;
    }
    identity::add_member(ctx, &actor(), owner_of, "member@demo.incubase.cn", MemberRole::Owner, 0).await?;
    Ok(())
}

/// Seeds the demo base; does nothing when organizations already exist. Returns how many
/// organizations it created.
pub async fn demo(ctx: Ctx<'_>) -> AppResult<usize> {
    let db = ctx.db;
    if entity::organization::Entity::find().count(db).await? > 0 {
        return Ok(0);
    }
    let mut rng = StdRng::seed_from_u64(20_261_129);
    let now = Utc::now();
    let mut created = 0;
    let mut used_names = std::collections::HashSet::new();

    // A few organizations written by hand, including a cross-strait one in both scripts.
    let featured = [
        (
            "厦门市海峡两岸妇女交流促进会",
            Some("廈門市海峽兩岸婦女交流促進會"),
            "Xiamen Cross-Strait Women's Exchange Association",
            OrganizationKind::SocialGroup,
            vec![FocusArea::Women, FocusArea::CrossStrait],
        ),
        (
            "厦门市妇女儿童公益基金会",
            None,
            "Xiamen Women and Children Charity Foundation",
            OrganizationKind::Foundation,
            vec![FocusArea::Women, FocusArea::Children],
        ),
    ];
    for (name, traditional, en, kind, areas) in featured {
        used_names.insert(name.to_owned());
        let code = credit_code_for(&mut rng, "350200", kind);
        let record = organization::create(
            ctx,
            &actor(),
            NewOrganization {
                name: name.into(),
                name_traditional: traditional.map(Into::into),
                name_en: Some(en.into()),
                kind: Some(kind),
                credit_code: code,
                founded_on: NaiveDate::from_ymd_opt(2012, 3, 8),
                focus_areas: areas,
                description: Some(format!("{name}是市妇联社会治理创新服务基地的重点合作伙伴。")),
                website: Some("https://www.example.org.cn".into()),
                joined_at: Some(Utc.with_ymd_and_hms(2019, 3, 8, 1, 0, 0).single().unwrap_or(now)),
                ..Default::default()
            },
        )
        .await?;
        advance(ctx, record.org.id, Stage::Resident, record.org.stage_changed_at).await?;
        if created == 0 {
            demo_accounts(ctx, record.org.id).await?;
        }
        created += 1;
    }

    for (stage, count) in PLAN {
        let count = if stage == Stage::Resident { count - 2 } else { count };
        for _ in 0..count {
            let (district, division) = DISTRICTS[rng.random_range(0..DISTRICTS.len())];
            let (name, areas, kind) = loop {
                let theme = THEMES[rng.random_range(0..THEMES.len())];
                let (word, areas) = FOCUS_WORDS[rng.random_range(0..FOCUS_WORDS.len())];
                let (suffix, kind) = SUFFIXES[rng.random_range(0..SUFFIXES.len())];
                let name = format!("厦门市{district}{theme}{word}{suffix}");
                if used_names.insert(name.clone()) {
                    break (name, areas, kind);
                }
            };
            let contact =
                format!("{}{}", SURNAMES[rng.random_range(0..SURNAMES.len())], GIVEN[rng.random_range(0..GIVEN.len())]);
            let joined_days_ago = rng.random_range(400..2400);
            let joined_at = now - Duration::days(joined_days_ago);
            let founded = joined_at.date_naive() - Duration::days(rng.random_range(100..3000));
            let record = organization::create(
                ctx,
                &actor(),
                NewOrganization {
                    name: name.clone(),
                    kind: Some(kind),
                    credit_code: credit_code_for(&mut rng, division, kind),
                    founded_on: Some(founded),
                    focus_areas: areas.to_vec(),
                    contact_name: Some(contact),
                    contact_phone: Some(format!("0592-{}", rng.random_range(5_000_000..5_999_999))),
                    description: Some(format!("{name}立足{district}，为辖区妇女、儿童和家庭提供专业社会工作服务。")),
                    joined_at: Some(joined_at),
                    ..Default::default()
                },
            )
            .await?;
            advance(ctx, record.org.id, stage, joined_at).await?;
            created += 1;
        }
    }
    crowdfunding(ctx, &mut rng).await?;
    grants(ctx, &mut rng).await?;
    events(ctx).await?;
    spaces(ctx, &mut rng).await?;
    Ok(created)
}

mod crowdfunding;
mod events;
mod grants;
/// The building: training rooms, a hall, an exhibition area, meeting and activity rooms and
/// resident offices, with three weeks of bookings ahead (some waiting for approval).
mod spaces;
mod stages;

pub use crowdfunding::*;
pub use events::*;
pub use grants::*;
pub use spaces::*;
use stages::*;
