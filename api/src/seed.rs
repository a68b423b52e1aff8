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

/// Password of every demo account. Demo data only: never use seed-demo in production.
pub const DEMO_PASSWORD: &str = "incubase-demo-2026";

/// Creates an admin account, or gives an existing account the ADMIN role.
pub async fn create_admin(ctx: Ctx<'_>, email: &str, name: &str, password: String) -> AppResult<String> {
    let actor = Actor::cli("create-admin");
    if let Some(existing) = identity::account_by_email(ctx.db, email).await? {
        let mut roles = Role::parse_list(&existing.roles);
        roles.push(Role::Admin);
        identity::set_roles(ctx, &actor, existing.id, &roles).await?;
        return Ok(format!("{} is now an admin", existing.email));
    }
    let account = identity::create_account(ctx, &actor, email, &password, name, &[Role::Admin]).await?;
    Ok(format!("created admin account {}", account.email))
}

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

/// The building: training rooms, a hall, an exhibition area, meeting and activity rooms and
/// resident offices, with three weeks of bookings ahead (some waiting for approval).
pub async fn spaces(ctx: Ctx<'_>, rng: &mut StdRng) -> AppResult<usize> {
    let db = ctx.db;
    use crate::service::booking::{self, Booker, BookingRequest};
    use crate::service::space::{self, Closure, OpeningHours, SpaceInput};
    use chrono::{Datelike, Weekday};
    use entity::space::SpaceKind;
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};

    let week = |opens: u16, closes: u16, days: &[Weekday]| -> Vec<OpeningHours> {
        days.iter().map(|&weekday| OpeningHours { weekday, opens, closes }).collect()
    };
    use Weekday::*;
    let all_week = [Mon, Tue, Wed, Thu, Fri, Sat, Sun];
    let spring_festival = Closure {
        starts_on: NaiveDate::from_ymd_opt(2027, 2, 5).unwrap_or_default(),
        ends_on: NaiveDate::from_ymd_opt(2027, 2, 11).unwrap_or_default(),
        reason: "春节假期，基地闭馆".into(),
    };
    type Room = (&'static str, SpaceKind, i32, i32, bool, i32, &'static [&'static str]);
    let rooms: [Room; 7] = [
        ("第一培训室", SpaceKind::TrainingRoom, 2, 40, false, 15, &["投影仪", "白板", "无线话筒", "课桌椅 40 套"]),
        ("第二培训室", SpaceKind::TrainingRoom, 2, 30, false, 15, &["投影仪", "白板", "课桌椅 30 套"]),
        ("多功能厅", SpaceKind::Hall, 1, 150, true, 60, &["LED 大屏", "音响系统", "舞台灯光", "同声传译设备"]),
        ("优秀案例展示区", SpaceKind::ExhibitionArea, 1, 60, true, 60, &["展板 20 块", "触控查询屏", "射灯"]),
        ("议事会议室", SpaceKind::MeetingRoom, 3, 16, false, 0, &["会议平板", "视频会议系统"]),
        ("亲子活动室", SpaceKind::ActivityRoom, 2, 25, false, 15, &["软垫", "绘本角", "儿童桌椅"]),
        ("心语咨询室", SpaceKind::CounselingRoom, 3, 4, true, 0, &["沙盘", "放松椅"]),
    ];
    let mut bookable = Vec::new();
    for (name, kind, floor, capacity, approval, buffer, equipment) in rooms {
        let hours = if kind == SpaceKind::CounselingRoom {
            week(9 * 60, 17 * 60 + 30, &[Mon, Tue, Wed, Thu, Fri])
        } else {
            week(8 * 60 + 30, 21 * 60 + 30, &all_week)
        };
        let record = space::create(
            ctx,
            &actor(),
            SpaceInput {
                name: Some(name.into()),
                kind: Some(kind),
                floor: Some(floor),
                capacity: Some(capacity),
                description: Some(format!("社会治理创新服务基地{floor}楼{name}。")),
                equipment: Some(equipment.iter().map(|e| (*e).to_owned()).collect()),
                photo_urls: Some(vec![format!("https://static.example.org.cn/base/space-{}.jpg", bookable.len() + 1)]),
                requires_approval: Some(approval),
                hours: Some(hours),
                closures: Some(vec![spring_festival.clone()]),
                min_notice_minutes: Some(if approval { 24 * 60 } else { 60 }),
                max_advance_days: Some(if kind == SpaceKind::Hall { 180 } else { 60 }),
                setup_minutes: Some(buffer),
                teardown_minutes: Some(buffer),
                ..Default::default()
            },
        )
        .await?;
        bookable.push(record);
    }

    let residents: Vec<i64> = entity::organization::Entity::find()
        .filter(entity::organization::Column::Stage.eq(Stage::Resident))
        .order_by_asc(entity::organization::Column::Id)
        .limit(20)
        .all(db)
        .await?
        .into_iter()
        .map(|o| o.id)
        .collect();
    for (i, org) in residents.iter().take(8).enumerate() {
        space::create(
            ctx,
            &actor(),
            SpaceInput {
                name: Some(format!("入驻办公室 {}", 401 + i)),
                kind: Some(SpaceKind::Office),
                floor: Some(4),
                capacity: Some(6),
                equipment: Some(vec!["办公桌椅".into(), "文件柜".into(), "网络端口".into()]),
                requires_approval: Some(true),
                hours: Some(week(8 * 60 + 30, 18 * 60, &[Mon, Tue, Wed, Thu, Fri])),
                resident_organization_id: Some(Some(*org)),
                ..Default::default()
            },
        )
        .await?;
    }

    let manager = identity::account_by_email(db, "manager@demo.incubase.cn").await?;
    let member = identity::account_by_email(db, "member@demo.incubase.cn").await?;
    let (Some(manager), Some(member)) = (manager, member) else { return Ok(bookable.len()) };
    let shanghai = chrono_tz::Asia::Shanghai;
    let today = Utc::now().with_timezone(&shanghai).date_naive();

    // The current project-management cohort: Tuesday and Thursday mornings for five weeks.
    let mut first = today + Duration::days(1);
    while first.weekday() != Tue {
        first += Duration::days(1);
    }
    if let Some(start) = first.and_hms_opt(9, 0, 0).and_then(|t| t.and_local_timezone(shanghai).single()) {
        let start = start.with_timezone(&Utc);
        booking::create_recurring(
            ctx,
            &actor(),
            Booker { account_id: manager.id, is_staff: true },
            BookingRequest {
                space_id: bookable[0].space.id,
                starts_at: start,
                ends_at: start + Duration::hours(3),
                attendees: 36,
                purpose: Some("第五期政府购买服务项目管理培训班".into()),
                organization_id: None,
                client_key: None,
                manager_note: Some("每期结束后收回学员手册".into()),
            },
            crate::service::recurrence::Recurrence {
                frequency: crate::service::recurrence::Frequency::Weekly,
                interval: 1,
                weekdays: vec![Tue, Thu],
                until: None,
                count: Some(10),
            },
            booking::OnConflict::Skip,
        )
        .await?;
    }
    const PURPOSES: &[&str] = &[
        "政府购买服务项目管理培训",
        "社会工作实务能力提升班",
        "凤凰之约公益创投项目路演",
        "优秀案例展示",
        "项目成果展示会",
        "经验分享沙龙",
        "巾帼志愿服务队例会",
        "两岸妇女社会工作交流座谈",
        "家庭教育公益讲座",
        "入驻组织联席会议",
    ];
    const STARTS: &[(u32, i64)] = &[(9, 150), (14, 180), (19, 120), (10, 90), (15, 120)];
    let mut made = 0;
    for day in 2..23 {
        let date = today + Duration::days(day);
        let per_day = if date.weekday() == Sun { 1 } else { rng.random_range(2..5) };
        for _ in 0..per_day {
            let room = &bookable[rng.random_range(0..bookable.len())];
            let (hour, minutes) = STARTS[rng.random_range(0..STARTS.len())];
            let Some(local) = date.and_hms_opt(hour, 0, 0) else { continue };
            let Some(start) = local.and_local_timezone(shanghai).single() else { continue };
            let start = start.with_timezone(&Utc);
            let by_member = room.space.requires_approval && rng.random_bool(0.5);
            let organization_id =
                if residents.is_empty() { None } else { Some(residents[rng.random_range(0..residents.len())]) };
            let result = booking::create(
                ctx,
                &actor(),
                Booker { account_id: if by_member { member.id } else { manager.id }, is_staff: !by_member },
                BookingRequest {
                    space_id: room.space.id,
                    starts_at: start,
                    ends_at: start + Duration::minutes(minutes),
                    attendees: rng.random_range(1..=room.space.capacity.min(80)),
                    purpose: Some(PURPOSES[rng.random_range(0..PURPOSES.len())].into()),
                    organization_id: if by_member { None } else { organization_id },
                    client_key: None,
                    manager_note: None,
                },
            )
            .await;
            // Clashes and rules (e.g. the counseling room on weekends) simply skip a slot.
            if result.is_ok() {
                made += 1;
            }
        }
    }
    Ok(made)
}

/// Campaigns of resident organizations in every status, with donations recorded through the
/// service (so totals and receipts are what confirmations produce), then spread out in time.
/// Some donors are masked or anonymous, a few pledges are unconfirmed and one is refunded.
pub async fn crowdfunding(ctx: Ctx<'_>, rng: &mut StdRng) -> AppResult<usize> {
    let db = ctx.db;
    use crate::service::crowdfunding::{self as cf, BudgetLineInput, CampaignAction, Donor, NewCampaign, NewDonation};
    use entity::campaign::CampaignStatus;
    use entity::donation::{self, DisplayMode, DonationChannel};
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};

    let residents: Vec<i64> = entity::organization::Entity::find()
        .filter(entity::organization::Column::Stage.eq(Stage::Resident))
        .order_by_asc(entity::organization::Column::Id)
        .limit(8)
        .all(db)
        .await?
        .into_iter()
        .map(|o| o.id)
        .collect();
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

/// Walks an organization to `stage` through allowed transitions, spaced out in time.
async fn advance(ctx: Ctx<'_>, id: i64, stage: Stage, mut at: chrono::DateTime<Utc>) -> AppResult<()> {
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

// ---------------------------------------------------------------- venture philanthropy and projects

const PROPOSAL_THEMES: [(&str, &str); 12] = [
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

const STREET_OFFICES: [&str; 8] = [
    "思明区嘉莲街道办事处",
    "思明区莲前街道办事处",
    "湖里区殿前街道办事处",
    "湖里区金山街道办事处",
    "集美区侨英街道办事处",
    "海沧区新阳街道办事处",
    "同安区大同街道办事处",
    "翔安区新店街道办事处",
];
const COMMUNITIES: [&str; 6] = [
    "思明区莲花五村社区居委会",
    "湖里区枋湖社区居委会",
    "集美区杏林湾社区居委会",
    "海沧区海虹社区居委会",
    "思明区前埔北社区居委会",
    "湖里区禾山社区居委会",
];
const FAMILY_PROJECTS: [&str; 8] = [
    "妇女儿童关爱服务项目",
    "家庭教育指导服务项目",
    "亲子成长陪伴项目",
    "困境妇女儿童帮扶项目",
    "婚姻家庭辅导服务项目",
    "儿童友好社区建设项目",
    "妇女议事会能力建设项目",
    "“四点半课堂”托管服务项目",
];
const OTHER_PROJECTS: [(&str, &str, entity::service_project::PurchaserKind); 5] = [
    ("厦门市妇女联合会", "巾帼志愿服务项目", entity::service_project::PurchaserKind::WomensFederation),
    ("厦门市民政局", "社区居家养老服务项目", entity::service_project::PurchaserKind::GovernmentDepartment),
    ("厦门市妇女联合会", "社会组织孵化培育项目", entity::service_project::PurchaserKind::WomensFederation),
    ("思明区民政局", "社区治理创新服务项目", entity::service_project::PurchaserKind::GovernmentDepartment),
    ("湖里区民政局", "新市民融入服务项目", entity::service_project::PurchaserKind::GovernmentDepartment),
];
const ACTIVITIES: [&str; 8] = [
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
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};

    let orgs: Vec<i64> = entity::organization::Entity::find()
        .filter(entity::organization::Column::Stage.is_in([Stage::Resident, Stage::Graduated, Stage::Incubating]))
        .order_by_asc(entity::organization::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|o| o.id)
        .collect();
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

// ---------------------------------------------------------------- events

/// kind, how many, titles to cycle through, capacity range, group limit
type EventPlanRow = (EventKind, usize, &'static [&'static str], (i32, i32), i32);

const EVENT_PLAN: [EventPlanRow; 4] = [
    (
        EventKind::Exhibition,
        10,
        &["妇女儿童家庭服务优秀案例展", "公益创投项目成果展示会", "巾帼社会组织发展成果展", "“凤凰之约”公益创投成果展"],
        (700, 1600),
        5,
    ),
    (
        EventKind::Salon,
        26,
        &[
            "社会组织负责人经验分享沙龙",
            "家庭教育社工实务沙龙",
            "女性创业者交流沙龙",
            "政府购买服务项目管理沙龙",
            "妇女心理健康服务沙龙",
            "社区儿童之家运营分享会",
        ],
        (30, 60),
        2,
    ),
    (
        EventKind::Promotion,
        17,
        &[
            "“三八”妇女节公益宣传活动",
            "家庭文明建设宣传周",
            "反家暴法律知识宣传",
            "儿童安全公益宣传日",
            "巾帼志愿服务集市",
        ],
        (400, 1000),
        4,
    ),
    (
        EventKind::Exchange,
        8,
        &[
            "海峡两岸妇女社会工作交流研讨会",
            "两岸家庭服务实务工作坊",
            "两岸女性社会组织参访交流",
            "港澳台妇女团体交流座谈会",
        ],
        (40, 80),
        1,
    ),
];

fn traditional(simplified: &str) -> String {
    // Enough of a mapping for the demo titles.
    const PAIRS: [(char, char); 24] = [
        ('妇', '婦'),
        ('岸', '岸'),
        ('两', '兩'),
        ('会', '會'),
        ('组', '組'),
        ('织', '織'),
        ('务', '務'),
        ('实', '實'),
        ('讨', '討'),
        ('坊', '坊'),
        ('门', '門'),
        ('访', '訪'),
        ('交', '交'),
        ('流', '流'),
        ('庭', '庭'),
        ('团', '團'),
        ('体', '體'),
        ('谈', '談'),
        ('澳', '澳'),
        ('台', '臺'),
        ('湾', '灣'),
        ('参', '參'),
        ('与', '與'),
        ('业', '業'),
    ];
    simplified.chars().map(|c| PAIRS.iter().find(|(s, _)| *s == c).map_or(c, |(_, t)| *t)).collect()
}

fn person(rng: &mut StdRng) -> String {
    format!("{}{}", SURNAMES[rng.random_range(0..SURNAMES.len())], GIVEN[rng.random_range(0..GIVEN.len())])
}

/// A year of the base's programme: 69 activities of every kind (the source's count), most of
/// them over and checked in, a few ahead with open registration and waitlists.
pub async fn events(ctx: Ctx<'_>) -> AppResult<usize> {
    let db = ctx.db;
    use crate::service::event::{self as ev, NewDelegation, NewEvent, NewExhibit, QuestionInput, TrainingFields};
    use entity::delegation::Origin;
    use entity::registration::{self, IdDocType, RegistrationStatus};
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, Set};

    let mut rng = StdRng::seed_from_u64(20_260_308);
    let residents: Vec<i64> = entity::organization::Entity::find()
        .filter(entity::organization::Column::Stage.eq(Stage::Resident))
        .order_by_asc(entity::organization::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|o| o.id)
        .collect();
    let Some(&federation_partner) = residents.first() else { return Ok(0) };
    let now = Utc::now();
    let first_day = now - Duration::days(330);

    // (kind, title, capacity, group limit)
    let mut plan: Vec<(EventKind, String, i32, i32)> = Vec::new();
    for (kind, count, titles, (low, high), group) in EVENT_PLAN {
        for i in 0..count {
            let cap = rng.random_range(low..=high) / 10 * 10;
            plan.push((kind, titles[i % titles.len()].to_owned(), cap, group));
        }
    }
    // Two programmes: 5 cohorts of project-management training, 3 of social-work practice.
    let pm = ev::create_programme(
        ctx,
        &actor(),
        "社会组织项目管理能力提升培训",
        Some("面向社会组织负责人和项目主管，覆盖项目设计、预算、执行、评估与政府购买服务项目管理。".into()),
        federation_partner,
    )
    .await?;
    let sw = ev::create_programme(
        ctx,
        &actor(),
        "妇女儿童家庭社会工作实务培训",
        Some("面向妇联干部和一线社工，讲授个案、小组、社区工作方法及妇女儿童家庭服务实务。".into()),
        federation_partner,
    )
    .await?;
    for cohort in 1..=5 {
        plan.push((EventKind::Training, format!("项目管理能力提升培训（第{cohort}期）"), 50, 1));
    }
    for cohort in 1..=3 {
        plan.push((EventKind::Training, format!("社会工作实务培训（第{cohort}期）"), 40, 1));
    }
    // Spread over the year in a shuffled but seeded order.
    for i in (1..plan.len()).rev() {
        let j = rng.random_range(0..=i);
        plan.swap(i, j);
    }
    let spacing = Duration::hours(24 * 390 / plan.len() as i64);
    let (mut pm_cohort, mut sw_cohort) = (0, 0);
    let mut created = 0;
    for (index, (kind, title, capacity, group_limit)) in plan.into_iter().enumerate() {
        // Local 09:30 or 14:30 on a spread-out day.
        let day = (first_day + spacing * index as i32).date_naive();
        let hour = if rng.random_bool(0.5) { 1 } else { 6 };
        let starts_at = Utc.from_utc_datetime(&day.and_hms_opt(hour, 30, 0).unwrap_or_default());
        let hours = match kind {
            EventKind::Training => 24 * 2 + 8,
            EventKind::Exhibition => 24 * 6 + 8,
            _ => 2 + rng.random_range(0..2),
        };
        let ends_at = starts_at + Duration::hours(hours);
        let organizer = if matches!(kind, EventKind::Training | EventKind::Exchange) {
            federation_partner
        } else {
            residents[rng.random_range(0..residents.len())]
        };
        let training = (kind == EventKind::Training).then(|| {
            let (programme, cohort) = if title.starts_with("项目管理") {
                pm_cohort += 1;
                (pm.id, pm_cohort)
            } else {
                sw_cohort += 1;
                (sw.id, sw_cohort)
            };
            TrainingFields {
                programme_id: programme,
                cohort,
                trainers: vec![format!("{}老师", SURNAMES[rng.random_range(0..SURNAMES.len())]), person(&mut rng)],
                syllabus: Some("第一天：项目设计与需求评估；第二天：预算与执行管理；第三天：成效评估与结项。".into()),
                hours: Some(20),
                certificate_threshold_percent: Some(80),
            }
        });
        let exchange = kind == EventKind::Exchange;
        let event = ev::create(
            ctx,
            &actor(),
            NewEvent {
                kind,
                title_traditional: exchange.then(|| traditional(&title)),
                summary: Some(format!("{title}，由市妇联社会治理创新服务基地主办。")),
                summary_traditional: None,
                description: Some(format!("{title}。欢迎妇女、儿童家庭和社会组织工作者参加。")),
                description_traditional: None,
                title,
                starts_at,
                ends_at,
                time_zone: None,
                venue_space_id: None,
                venue_address: Some(if rng.random_bool(0.8) {
                    "厦门市思明区社会治理创新服务基地".into()
                } else {
                    format!("厦门市{}社区服务中心", DISTRICTS[rng.random_range(0..DISTRICTS.len())].0)
                }),
                organizer_id: organizer,
                capacity,
                group_limit: Some(group_limit),
                registration_opens_at: None,
                registration_closes_at: None,
                cancellation_deadline: None,
                requires_approval: exchange,
                requires_identity_document: exchange,
                audience_tags: match kind {
                    EventKind::Training => vec!["社会组织".into(), "社工".into()],
                    EventKind::Exchange => vec!["两岸交流".into(), "妇女".into()],
                    _ => vec!["妇女".into(), "儿童".into(), "家庭".into()],
                },
                questions: if kind == EventKind::Training {
                    vec![QuestionInput { prompt: "所在机构及职务".into(), required: true }]
                } else {
                    Vec::new()
                },
                training,
            },
        )
        .await?;
        ev::transition(ctx, &actor(), event.id, entity::event::EventStatus::Published).await?;
        let past = ends_at < now;
        if past {
            ev::transition(ctx, &actor(), event.id, entity::event::EventStatus::Completed).await?;
        }
        if kind == EventKind::Exhibition {
            for n in 0..rng.random_range(4..8) {
                let shown = residents[rng.random_range(0..residents.len())];
                ev::add_exhibit(
                    ctx,
                    &actor(),
                    NewExhibit {
                        event_id: event.id,
                        title: ["社区妈妈互助站", "困境儿童关爱计划", "婚姻家庭调解服务", "巾帼创业孵化营"][n % 4]
                            .into(),
                        story: Some("项目实施两年来，累计服务妇女儿童家庭上千人次，形成可复制的服务模式。".into()),
                        media_urls: vec![format!("https://demo.incubase.cn/exhibits/{}-{n}.jpg", event.id)],
                        organization_id: Some(shown),
                        project_name: Some("政府购买服务项目".into()),
                    },
                )
                .await?;
            }
        }
        if exchange {
            let origins = [Origin::Taiwan, Origin::Taiwan, Origin::HongKong, Origin::Macao];
            for (n, origin) in origins.iter().take(rng.random_range(1..4)).enumerate() {
                let (name, name_tw) = match origin {
                    Origin::Taiwan => ("台湾妇女社会工作参访团", "臺灣婦女社會工作參訪團"),
                    Origin::HongKong => ("香港妇女团体交流团", "香港婦女團體交流團"),
                    _ => ("澳门妇女联合总会交流团", "澳門婦女聯合總會交流團"),
                };
                ev::add_delegation(
                    ctx,
                    &actor(),
                    NewDelegation {
                        event_id: event.id,
                        origin: *origin,
                        name: format!("{name}（{}）", n + 1),
                        name_traditional: Some(format!("{name_tw}（{}）", n + 1)),
                        leader_name: person(&mut rng),
                        members: (0..rng.random_range(5..12)).map(|_| person(&mut rng)).collect(),
                        host_organization_ids: vec![federation_partner],
                    },
                )
                .await?;
            }
        }

        // Registrations: fill 60–100% of the seats; one event in five is oversubscribed.
        let oversubscribed = rng.random_bool(0.2);
        let target = if oversubscribed { capacity + capacity / 5 } else { capacity * rng.random_range(60..=100) / 100 };
        let mut rows = Vec::new();
        let mut persons = 0;
        let mut seats = 0;
        let mut serial = 0;
        while persons < target {
            serial += 1;
            let party = if group_limit > 1 { rng.random_range(1..=group_limit) } else { 1 };
            persons += party;
            let fits = seats + party <= capacity;
            let cancelled = rng.random_bool(0.04);
            let status = if cancelled {
                RegistrationStatus::Cancelled
            } else if fits {
                seats += party;
                RegistrationStatus::Confirmed
            } else {
                RegistrationStatus::Waitlisted
            };
            // Registration order is queue order: earlier rows registered earlier.
            let registered_at = starts_at - Duration::days(20) + Duration::minutes(serial * 7);
            let checked_in = past && status == RegistrationStatus::Confirmed && rng.random_bool(0.88);
            let women = (party * 7 / 10).max(1);
            let children = if kind == EventKind::Training || exchange { 0 } else { party - women };
            let (doc_type, doc_number, purged_at) = if exchange {
                let purged = past && now - ends_at > Duration::days(30);
                let number = format!(
                    "350203{:04}{:02}{:02}{:03}X",
                    rng.random_range(1965..2000),
                    rng.random_range(1..13),
                    rng.random_range(1..29),
                    rng.random_range(0..1000)
                );
                (
                    Some(IdDocType::MainlandId),
                    (!purged).then_some(number),
                    purged.then_some(ends_at + Duration::days(30)),
                )
            } else {
                (None, None, None)
            };
            rows.push(registration::ActiveModel {
                event_id: Set(event.id),
                account_id: Set(None),
                partner_key_id: Set(None),
                name: Set(person(&mut rng)),
                phone: Set(Some(format!(
                    "1{}{:04}{:04}",
                    [38, 39, 58, 59, 86][rng.random_range(0..5)],
                    event.id,
                    serial
                ))),
                party_size: Set(party),
                women: Set(women),
                children: Set(children),
                family_members: Set(if children > 0 { party } else { 0 }),
                professionals: Set(if kind == EventKind::Training { party } else { 0 }),
                answers: Set(if kind == EventKind::Training {
                    r#"[{"question":"q1","answer":"社工机构 项目主管"}]"#.into()
                } else {
                    "[]".into()
                }),
                consent_at: Set(registered_at),
                status: Set(status),
                queued_at: Set(registered_at),
                client_key: Set(None),
                ticket_code: Set(ev::ticket_code()),
                checked_in_at: Set(checked_in.then(|| starts_at + Duration::minutes(rng.random_range(-30..20)))),
                attended: Set(checked_in.then_some(party)),
                id_doc_type: Set(doc_type),
                id_doc_number: Set(doc_number),
                id_doc_purged_at: Set(purged_at),
                decided_at: Set(exchange.then_some(registered_at + Duration::hours(6))),
                cancelled_at: Set(cancelled.then_some(registered_at + Duration::hours(30))),
                created_at: Set(registered_at),
                updated_at: Set(registered_at),
                ..Default::default()
            });
        }
        // Written in bulk (a year of history), with their events in the same transaction.
        let txn = db.begin().await?;
        let mut logged = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(200) {
            let inserted = registration::Entity::insert_many(chunk.to_vec()).exec_with_returning(&txn).await?;
            logged.extend(inserted.iter().map(ev::demo_registration_event));
        }
        entity::event::Entity::update_many()
            .col_expr(entity::event::Column::SeatsTaken, sea_orm::sea_query::Expr::val(seats))
            .filter(entity::event::Column::Id.eq(event.id))
            .exec(&txn)
            .await?;
        ctx.commit(txn, &actor(), logged).await?;
        created += 1;
    }
    Ok(created)
}
