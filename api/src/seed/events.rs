//! Demo events: trainings, exhibitions, salons and exchanges, with registrations.
#[allow(unused_imports)]
use super::*;

/// kind, how many, titles to cycle through, capacity range, group limit
pub(super) type EventPlanRow = (EventKind, usize, &'static [&'static str], (i32, i32), i32);

pub(super) const EVENT_PLAN: [EventPlanRow; 4] = [
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

pub(super) fn traditional(simplified: &str) -> String {
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

pub(super) fn person(rng: &mut StdRng) -> String {
    format!("{}{}", SURNAMES[rng.random_range(0..SURNAMES.len())], GIVEN[rng.random_range(0..GIVEN.len())])
}

/// A year of the base's programme: 69 activities of every kind (the source's count), most of
/// them over and checked in, a few ahead with open registration and waitlists.
pub async fn events(ctx: Ctx<'_>) -> AppResult<usize> {
    let db = ctx.db;
    use crate::service::event::{self as ev, NewDelegation, NewEvent, NewExhibit, QuestionInput, TrainingFields};
    use entity::delegation::Origin;
    use entity::registration::{self, IdDocType, RegistrationStatus};
    use sea_orm::{ColumnTrait, QueryFilter, Set};

    let mut rng = StdRng::seed_from_u64(20_260_308);
    let residents = organizations_at(db, &[Stage::Resident], None).await?;
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
    let programme = async |title: &str, description: &str| {
        ev::create_programme(ctx, &actor(), title, Some(description.into()), federation_partner).await
    };
    let pm = programme(
        "社会组织项目管理能力提升培训",
        "面向社会组织负责人和项目主管，覆盖项目设计、预算、执行、评估与政府购买服务项目管理。",
    )
    .await?;
    let sw = programme(
        "妇女儿童家庭社会工作实务培训",
        "面向妇联干部和一线社工，讲授个案、小组、社区工作方法及妇女儿童家庭服务实务。",
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
            true,
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
        ev::transition(ctx, &actor(), true, event.id, entity::event::EventStatus::Published).await?;
        let past = ends_at < now;
        if past {
            ev::transition(ctx, &actor(), true, event.id, entity::event::EventStatus::Completed).await?;
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
