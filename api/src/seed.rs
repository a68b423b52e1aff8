//! `seed-demo`: a base that looks like the real one — about 20 resident organizations and the
//! 136-member liaison network, plus some incubating, applied, graduated and exited ones, each
//! with a stage history that went through the real transitions.
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use entity::organization::{OrganizationKind, Stage};
use entity::organization_focus_area::FocusArea;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};

use crate::error::AppResult;
use crate::service::credit_code;
use crate::service::identity::{self, Role};
use crate::service::organization::{self, NewOrganization, StageChange};
use entity::membership::MemberRole;

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
pub async fn create_admin(db: &DatabaseConnection, email: &str, name: &str, password: String) -> AppResult<String> {
    if let Some(existing) = identity::account_by_email(db, email).await? {
        let mut roles = Role::parse_list(&existing.roles);
        roles.push(Role::Admin);
        identity::set_roles(db, existing.id, &roles).await?;
        return Ok(format!("{} is now an admin", existing.email));
    }
    let account = identity::create_account(db, email, &password, name, &[Role::Admin]).await?;
    Ok(format!("created admin account {}", account.email))
}

async fn demo_accounts(db: &DatabaseConnection, owner_of: i64) -> AppResult<()> {
    for (email, name, roles) in [
        ("admin@demo.incubase.cn", "基地管理员", vec![Role::Admin]),
        ("manager@demo.incubase.cn", "基地运营经理", vec![Role::Manager]),
        ("reviewer@demo.incubase.cn", "公益创投评审", vec![Role::Reviewer]),
        ("donor@demo.incubase.cn", "爱心捐赠人", vec![Role::Donor]),
        ("member@demo.incubase.cn", "社会组织负责人", vec![Role::Donor]),
    ] {
        identity::create_account(db, email, DEMO_PASSWORD, name, &roles).await?;
    }
    identity::add_member(db, owner_of, "member@demo.incubase.cn", MemberRole::Owner, 0).await?;
    Ok(())
}

/// Seeds the demo base; does nothing when organizations already exist. Returns how many
/// organizations it created.
pub async fn demo(db: &DatabaseConnection) -> AppResult<usize> {
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
            db,
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
        advance(db, record.org.id, Stage::Resident, record.org.stage_changed_at).await?;
        if created == 0 {
            demo_accounts(db, record.org.id).await?;
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
                db,
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
            advance(db, record.org.id, stage, joined_at).await?;
            created += 1;
        }
    }
    spaces(db, &mut rng).await?;
    Ok(created)
}

/// The building: training rooms, a hall, an exhibition area, meeting and activity rooms and
/// resident offices, with three weeks of bookings ahead (some waiting for approval).
pub async fn spaces(db: &DatabaseConnection, rng: &mut StdRng) -> AppResult<usize> {
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
            db,
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
            db,
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
            db,
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
                db,
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

/// Walks an organization to `stage` through allowed transitions, spaced out in time.
async fn advance(db: &DatabaseConnection, id: i64, stage: Stage, mut at: chrono::DateTime<Utc>) -> AppResult<()> {
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
            db,
            StageChange { organization_id: id, to: *step, note: Some(note.into()), occurred_at: Some(at) },
        )
        .await?;
    }
    Ok(())
}
