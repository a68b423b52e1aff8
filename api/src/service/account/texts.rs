//! The account mails, in Simplified or Traditional script.
use super::{AccountMail, Locale, account};

fn pick(locale: Locale, hans: String, hant: String) -> String {
    match locale {
        Locale::Hans => hans,
        Locale::Hant => hant,
    }
}

/// A mail of `kind` to the account's own address, in its person's `locale`.
fn to_account(
    account: &account::Model,
    kind: &'static str,
    locale: Locale,
    (subject_hans, subject_hant): (&str, &str),
    (body_hans, body_hant): (String, String),
) -> AccountMail {
    AccountMail {
        kind,
        address: account.email.clone(),
        name: account.display_name.clone(),
        subject: pick(locale, subject_hans.into(), subject_hant.into()),
        body: pick(locale, body_hans, body_hant),
    }
}

/// `a***@example.org`.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((user, host)) => format!("{}***@{host}", user.chars().next().unwrap_or('*')),
        None => "***".into(),
    }
}

fn minutes(d: std::time::Duration) -> u64 {
    (d.as_secs() / 60).max(1)
}

fn code_lines(locale: Locale, token: &str, link: Option<String>) -> String {
    let code = pick(locale, format!("验证码：{token}"), format!("驗證碼：{token}"));
    match link {
        Some(link) => format!("{link}\n\n{code}"),
        None => code,
    }
}

pub fn reset(
    locale: Locale,
    account: &account::Model,
    token: &str,
    link: Option<&str>,
    ttl: std::time::Duration,
) -> AccountMail {
    let m = minutes(ttl);
    let code = code_lines(locale, token, link.map(|l| format!("{l}/reset-password?token={token}")));
    let name = &account.display_name;
    to_account(
        account,
        "password_reset",
        locale,
        ("重置密码", "重設密碼"),
        (
            format!(
                "{name}，您好：\n\n我们收到了重置您账户密码的请求。请在 {m} 分钟内用下面的链接或验证码设置新密码，它只能使用一次：\n\n{code}\n\n如果这不是您本人的操作，请忽略本邮件，您的密码不会改变。\n"
            ),
            format!(
                "{name}，您好：\n\n我們收到了重設您帳戶密碼的請求。請在 {m} 分鐘內用下面的連結或驗證碼設定新密碼，它只能使用一次：\n\n{code}\n\n如果這不是您本人的操作，請忽略本郵件，您的密碼不會改變。\n"
            ),
        ),
    )
}

pub fn verify(
    locale: Locale,
    name: &str,
    address: &str,
    token: &str,
    link: Option<&str>,
    ttl: std::time::Duration,
    change: bool,
) -> AccountMail {
    let h = (ttl.as_secs() / 3600).max(1);
    let code = code_lines(locale, token, link.map(|l| format!("{l}/verify-email?token={token}")));
    let (subject, body) = if change {
        (
            pick(locale, "确认新的邮箱地址".into(), "確認新的電子郵件地址".into()),
            pick(
                locale,
                format!(
                    "{name}，您好：\n\n您申请将账户邮箱改为 {address}。请在 {h} 小时内用下面的链接或验证码确认，确认后才会更改：\n\n{code}\n\n如果这不是您本人的操作，请忽略本邮件。\n"
                ),
                format!(
                    "{name}，您好：\n\n您申請將帳戶電子郵件改為 {address}。請在 {h} 小時內用下面的連結或驗證碼確認，確認後才會更改：\n\n{code}\n\n如果這不是您本人的操作，請忽略本郵件。\n"
                ),
            ),
        )
    } else {
        (
            pick(locale, "验证邮箱地址".into(), "驗證電子郵件地址".into()),
            pick(
                locale,
                format!("{name}，您好：\n\n请在 {h} 小时内用下面的链接或验证码确认 {address} 是您的邮箱：\n\n{code}\n"),
                format!(
                    "{name}，您好：\n\n請在 {h} 小時內用下面的連結或驗證碼確認 {address} 是您的電子郵件：\n\n{code}\n"
                ),
            ),
        )
    };
    AccountMail {
        kind: if change { "email_change" } else { "email_verification" },
        address: address.to_owned(),
        name: name.to_owned(),
        subject,
        body,
    }
}

pub fn email_changed(locale: Locale, before: &account::Model, new_email: &str) -> AccountMail {
    let (name, masked) = (&before.display_name, mask_email(new_email));
    to_account(
        before,
        "email_changed",
        locale,
        ("账户邮箱已更改", "帳戶電子郵件已更改"),
        (
            format!(
                "{name}，您好：\n\n您账户的邮箱已改为 {masked}，此地址不再用于登录。如果这不是您本人的操作，请立即联系基地工作人员。\n"
            ),
            format!(
                "{name}，您好：\n\n您帳戶的電子郵件已改為 {masked}，此地址不再用於登入。如果這不是您本人的操作，請立即聯絡基地工作人員。\n"
            ),
        ),
    )
}

pub fn password_changed(locale: Locale, account: &account::Model) -> AccountMail {
    let name = &account.display_name;
    to_account(
        account,
        "password_changed",
        locale,
        ("密码已更改", "密碼已更改"),
        (
            format!(
                "{name}，您好：\n\n您账户的密码刚刚更改，其他设备上的登录已退出。如果这不是您本人的操作，请立即用“忘记密码”重置密码，并联系基地工作人员。\n"
            ),
            format!(
                "{name}，您好：\n\n您帳戶的密碼剛剛更改，其他裝置上的登入已登出。如果這不是您本人的操作，請立即用「忘記密碼」重設密碼，並聯絡基地工作人員。\n"
            ),
        ),
    )
}

pub fn deleted(locale: Locale, account: &account::Model) -> AccountMail {
    let name = &account.display_name;
    to_account(
        account,
        "account_deleted",
        locale,
        ("账户已注销", "帳戶已註銷"),
        (
            format!(
                "{name}，您好：\n\n您的账户已注销，个人信息已删除或匿名化。您的捐赠记录以匿名方式保留，收据编号不变；尚未开始的活动报名和场地预约已取消。\n"
            ),
            format!(
                "{name}，您好：\n\n您的帳戶已註銷，個人資訊已刪除或匿名化。您的捐贈紀錄以匿名方式保留，收據編號不變；尚未開始的活動報名和場地預約已取消。\n"
            ),
        ),
    )
}
