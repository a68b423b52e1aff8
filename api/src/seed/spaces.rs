//! Demo spaces and their bookings.
#[allow(unused_imports)]
use super::*;

/// The building: training rooms, a hall, an exhibition area, meeting and activity rooms and
/// resident offices, with three weeks of bookings ahead (some waiting for approval).
pub async fn spaces(ctx: Ctx<'_>, rng: &mut StdRng) -> AppResult<usize> {
    let db = ctx.db;
    use crate::service::booking::{self, Booker, BookingRequest};
    use crate::service::space::{self, Closure, OpeningHours, SpaceInput};
    use chrono::{Datelike, Weekday};
    use entity::space::SpaceKind;

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

    let residents = organizations_at(db, &[Stage::Resident], Some(20)).await?;
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
    let shanghai = crate::time::BASE_TZ;
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
