//! Accounts, sessions, partner keys and membership, seen from a frontend.
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, Credentials, TEST_JWT_SECRET, TestApp, spawn_app_with};
use crate::organizations::create;
use api::service::identity::Role;

const SIGN_UP: &str =
    "mutation($i: SignUpInput!) { signUp(input: $i) { accessToken refreshToken account { id email roles } } }";
const SIGN_IN: &str = "mutation($i: SignInInput!) { signIn(input: $i) { accessToken refreshToken } }";
const REFRESH: &str = "mutation($i: RefreshSessionInput!) { refreshSession(input: $i) { accessToken refreshToken } }";
const SIGN_OUT: &str = "mutation($i: SignOutInput!) { signOut(input: $i) { revoked } }";
const VIEWER: &str = "{ viewer { isAuthenticated roles account { email displayName } memberships { role organization { name } } partner { name scopes } } }";

fn token(body: &Value, field: &str) -> String {
    body[field]["accessToken"].as_str().unwrap_or_else(|| panic!("no token in {body}")).to_owned()
}

fn bearer(token: &str) -> Credentials {
    Credentials { token: Some(token.to_owned()), api_key: None }
}

async fn sign_up(app: &TestApp, email: &str) -> Value {
    let anon = Credentials::anonymous();
    app.ok_as(
        &anon,
        SIGN_UP,
        json!({ "i": { "email": email, "password": "Spring-Festival-2026", "displayName": "王小明" } }),
    )
    .await
}

backend_tests! {
    async fn sign_up_sign_in_and_viewer(app) {
        let anon = Credentials::anonymous();
        let data = sign_up(&app, "Donor@Example.org").await;
        assert_eq!(data["signUp"]["account"]["email"], "donor@example.org", "emails are stored lower-case");
        assert_eq!(data["signUp"]["account"]["roles"], json!(["DONOR"]));

        let me = app.ok_as(&bearer(&token(&data, "signUp")), VIEWER, json!({})).await;
        assert_eq!(me["viewer"]["isAuthenticated"], true);
        assert_eq!(me["viewer"]["account"]["displayName"], "王小明");
        let nobody = app.ok_as(&anon, VIEWER, json!({})).await;
        assert_eq!(nobody["viewer"]["isAuthenticated"], false);
        assert_eq!(nobody["viewer"]["account"], Value::Null);

        let signed_in = app.ok_as(&anon, SIGN_IN, json!({ "i": { "email": "donor@example.org", "password": "Spring-Festival-2026" } })).await;
        assert!(token(&signed_in, "signIn").len() > 20);

        let wrong = app.gql_as(&anon, SIGN_IN, json!({ "i": { "email": "donor@example.org", "password": "wrong-password-1" } })).await;
        let unknown = app.gql_as(&anon, SIGN_IN, json!({ "i": { "email": "nobody@example.org", "password": "wrong-password-1" } })).await;
        assert_eq!(wrong["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
        assert_eq!(wrong["errors"][0]["message"], unknown["errors"][0]["message"], "unknown email and wrong password look alike");

        let again = app.gql_as(&anon, SIGN_UP, json!({ "i": { "email": "donor@example.org", "password": "Spring-Festival-2026", "displayName": "x" } })).await;
        assert_eq!(again["errors"][0]["extensions"]["code"], "CONFLICT");
        for weak in ["short1!", "onlyletterslong", "weak-password-123"] {
            let body = app.gql_as(&anon, SIGN_UP, json!({ "i": { "email": "weak@example.org", "password": weak, "displayName": "x" } })).await;
            assert_eq!(body["errors"][0]["extensions"]["field"], "password", "{weak}: {body}");
        }
        let body = app.gql_as(&anon, SIGN_UP, json!({ "i": { "email": "not-an-email", "password": "Spring-Festival-2026", "displayName": "x" } })).await;
        assert_eq!(body["errors"][0]["extensions"]["field"], "email");
    }

    async fn passwords_hashed_with_older_parameters_are_hashed_anew_at_sign_in(app) {
        use argon2::PasswordHasher;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let anon = Credentials::anonymous();
        sign_up(&app, "rehash@example.org").await;
        let stored = || async {
            entity::account::Entity::find()
                .filter(entity::account::Column::Email.eq("rehash@example.org"))
                .one(&app.state.db)
                .await
                .unwrap()
                .unwrap()
                .password_hash
        };
        assert!(stored().await.contains("$m=9216,t=4,p=1$"), "new hashes: 9 MiB, 4 passes");
        // A hash of the crate's defaults (19 MiB, 2 passes), as accounts made before carry.
        let older = argon2::Argon2::default().hash_password(b"Spring-Festival-2026").unwrap().to_string();
        assert!(older.contains("$m=19456,t=2,p=1$"));
        let set_hash = entity::account::Entity::update_many()
            .col_expr(entity::account::Column::PasswordHash, sea_orm::sea_query::Expr::value(older.clone()))
            .filter(entity::account::Column::Email.eq("rehash@example.org"));
        set_hash.exec(&app.state.db).await.unwrap();

        let wrong = app.gql_as(&anon, SIGN_IN, json!({ "i": { "email": "rehash@example.org", "password": "wrong-password-1" } })).await;
        assert_eq!(wrong["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
        assert_eq!(stored().await, older, "a wrong password changes nothing");

        let signed_in = app.ok_as(&anon, SIGN_IN, json!({ "i": { "email": "rehash@example.org", "password": "Spring-Festival-2026" } })).await;
        assert!(token(&signed_in, "signIn").len() > 20, "the older hash still verifies");
        let anew = stored().await;
        assert!(anew.contains("$m=9216,t=4,p=1$"), "stored hashed anew: {anew}");
        let again = app.ok_as(&anon, SIGN_IN, json!({ "i": { "email": "rehash@example.org", "password": "Spring-Festival-2026" } })).await;
        assert!(token(&again, "signIn").len() > 20, "and the new hash verifies");
        assert_eq!(stored().await, anew, "a current hash is kept as it is");
        let wrong = app.gql_as(&anon, SIGN_IN, json!({ "i": { "email": "rehash@example.org", "password": "wrong-password-1" } })).await;
        assert_eq!(wrong["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    }

    async fn refresh_rotates_and_sign_out_revokes(app) {
        let anon = Credentials::anonymous();
        let data = sign_up(&app, "rotate@example.org").await;
        let first_refresh = data["signUp"]["refreshToken"].as_str().expect("refresh").to_owned();

        let rotated = app.ok_as(&anon, REFRESH, json!({ "i": { "refreshToken": first_refresh } })).await;
        let access = token(&rotated, "refreshSession");
        let second_refresh = rotated["refreshSession"]["refreshToken"].as_str().expect("refresh").to_owned();
        assert_ne!(second_refresh, first_refresh);
        app.ok_as(&bearer(&access), VIEWER, json!({})).await;

        // Reusing a spent refresh token means it leaked: every session of the account ends.
        let reuse = app.gql_as(&anon, REFRESH, json!({ "i": { "refreshToken": first_refresh } })).await;
        assert_eq!(reuse["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
        let (status, body) = app.send(&bearer(&access), VIEWER, json!({})).await;
        assert_eq!((status, body["errors"][0]["extensions"]["code"].as_str()), (401, Some("UNAUTHENTICATED")));
        let dead = app.gql_as(&anon, REFRESH, json!({ "i": { "refreshToken": second_refresh } })).await;
        assert_eq!(dead["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");

        // Sign out ends the session and its access tokens.
        let fresh = app.ok_as(&anon, SIGN_IN, json!({ "i": { "email": "rotate@example.org", "password": "Spring-Festival-2026" } })).await;
        let access = token(&fresh, "signIn");
        let refresh = fresh["signIn"]["refreshToken"].as_str().expect("refresh");
        let out = app.ok_as(&anon, SIGN_OUT, json!({ "i": { "refreshToken": refresh } })).await;
        assert_eq!(out["signOut"]["revoked"], true);
        let (status, _) = app.send(&bearer(&access), VIEWER, json!({})).await;
        assert_eq!(status, 401);
    }

    async fn bad_tokens_are_unauthenticated_never_500(app) {
        let now = chrono::Utc::now().timestamp();
        let claims = |exp: i64| json!({ "sub": app.manager.id.to_string(), "sid": 1, "iat": now - 100, "exp": exp, "iss": "incubase", "aud": "incubase" });
        let key = jsonwebtoken::EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()).expect("key");
        let expired = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims(now - 60), &key).expect("jwt");
        let other_key = jsonwebtoken::EncodingKey::from_secret(b"another-secret-another-secret-another-secret").expect("key");
        let forged = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims(now + 600), &other_key).expect("jwt");
        let mut tampered = app.manager.token.clone();
        tampered.insert(tampered.len() - 3, 'x');
        for bad in [expired, forged, tampered, "garbage".to_owned(), "ib_not-a-key".to_owned()] {
            let (status, body) = app.send(&bearer(&bad), "{ viewer { isAuthenticated } }", json!({})).await;
            assert_eq!(status, 401, "{bad}: {body}");
            assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
        }
        let response = app.client.post(app.url("/graphql")).header("authorization", "Basic dXNlcjpwYXNz")
            .json(&json!({ "query": "{ viewer { isAuthenticated } }" })).send().await.expect("sent");
        assert_eq!(response.status().as_u16(), 401);
    }

    async fn partner_keys_are_shown_once_scoped_and_revocable(app) {
        let admin = Credentials::account(&app.account("admin", &[Role::Admin]).await);
        let created = app.ok_as(&admin, "mutation { createApiKey(input: { name: \"妇联小程序\", scopes: [REGISTER, DONATE] }) { secret apiKey { id prefix scopes } } }", json!({})).await;
        let secret = created["createApiKey"]["secret"].as_str().expect("secret").to_owned();
        assert!(secret.starts_with(created["createApiKey"]["apiKey"]["prefix"].as_str().expect("prefix")));
        assert_eq!(created["createApiKey"]["apiKey"]["scopes"], json!(["DONATE", "READ", "REGISTER"]));

        let listed = app.ok_as(&admin, "{ apiKeys { totalCount edges { node { name prefix } } } }", json!({})).await;
        assert_eq!(listed["apiKeys"]["totalCount"], 1);
        assert!(!listed.to_string().contains(&secret), "the secret is never shown again");

        let viewer = app.ok_as(&Credentials::api_key(&secret), VIEWER, json!({})).await;
        assert_eq!(viewer["viewer"]["partner"]["name"], "妇联小程序");
        let as_bearer = app.ok_as(&bearer(&secret), VIEWER, json!({})).await;
        assert_eq!(as_bearer["viewer"]["partner"]["scopes"], json!(["DONATE", "READ", "REGISTER"]));

        let donor = Credentials::account(&app.account("donor", &[Role::Donor]).await);
        let denied = app.gql_as(&donor, "{ apiKeys { totalCount } }", json!({})).await;
        assert_eq!(denied["errors"][0]["extensions"]["code"], "FORBIDDEN");

        let id = created["createApiKey"]["apiKey"]["id"].clone();
        app.ok_as(&admin, "mutation($id: ID!) { revokeApiKey(input: { id: $id }) { apiKey { revokedAt } } }", json!({ "id": id })).await;
        let (status, _) = app.send(&Credentials::api_key(&secret), VIEWER, json!({})).await;
        assert_eq!(status, 401, "a revoked key stops working at once");
    }

    async fn members_edit_their_own_organization_only(app) {
        let owner = app.account("owner", &[Role::Donor]).await;
        let owner_c = Credentials::account(&owner);
        // A signed-in person applies on behalf of a new organization and becomes its owner.
        let applied = app.ok_as(&owner_c, "mutation { createOrganization(input: { name: \"新申请的组织\", contact: { phone: \"0592-5000001\" } }) { organization { id slug stage viewerRole viewerCanEdit viewerCanChangeStage } } }", json!({})).await;
        let org = applied["createOrganization"]["organization"].clone();
        assert_eq!(org["stage"], "APPLIED");
        assert_eq!(org["viewerRole"], "OWNER");
        assert_eq!(org["viewerCanEdit"], true);
        assert_eq!(org["viewerCanChangeStage"], false);
        let liaison = app.gql_as(&owner_c, "mutation { createOrganization(input: { name: \"直接加入\", stage: LIAISON }) { organization { id } } }", json!({})).await;
        assert_eq!(liaison["errors"][0]["extensions"]["code"], "FORBIDDEN");

        let other = create(&app, json!({ "name": "别人的组织" })).await;
        let update = "mutation($i: UpdateOrganizationInput!) { updateOrganization(input: $i) { organization { description } } }";
        app.ok_as(&owner_c, update, json!({ "i": { "id": org["id"], "description": "我们的简介" } })).await;
        let denied = app.gql_as(&owner_c, update, json!({ "i": { "id": other["id"], "description": "x" } })).await;
        assert_eq!(denied["errors"][0]["extensions"]["code"], "FORBIDDEN");

        // Private contact details: staff and members only.
        let q = "query($s: String!) { organization(slug: $s) { contact { phone } } }";
        let vars = json!({ "s": org["slug"] });
        assert_eq!(app.ok_as(&owner_c, q, vars.clone()).await["organization"]["contact"]["phone"], "0592-5000001");
        assert_eq!(app.ok(q, vars.clone()).await["organization"]["contact"]["phone"], "0592-5000001");
        assert_eq!(app.ok_as(&Credentials::anonymous(), q, vars.clone()).await["organization"]["contact"]["phone"], Value::Null);
        let donor = Credentials::account(&app.account("donor", &[Role::Donor]).await);
        assert_eq!(app.ok_as(&donor, q, vars).await["organization"]["contact"]["phone"], Value::Null);

        // The owner invites an editor who has no account yet; signing up claims it.
        let add = "mutation($i: AddOrganizationMemberInput!) { addOrganizationMember(input: $i) { member { role } invitation { email role } } }";
        let invited = app.ok_as(&owner_c, add, json!({ "i": { "organizationId": org["id"], "email": "editor@example.org", "role": "EDITOR" } })).await;
        assert_eq!(invited["addOrganizationMember"]["invitation"]["email"], "editor@example.org");
        let editor = sign_up(&app, "editor@example.org").await;
        let editor_c = bearer(&token(&editor, "signUp"));
        let me = app.ok_as(&editor_c, VIEWER, json!({})).await;
        assert_eq!(me["viewer"]["memberships"], json!([{ "role": "EDITOR", "organization": { "name": "新申请的组织" } }]));
        app.ok_as(&editor_c, update, json!({ "i": { "id": org["id"], "description": "编辑改的" } })).await;
        let editor_adds = app.gql_as(&editor_c, add, json!({ "i": { "organizationId": org["id"], "email": "x@example.org", "role": "EDITOR" } })).await;
        assert_eq!(editor_adds["errors"][0]["extensions"]["code"], "FORBIDDEN", "editors do not manage members");

        let members = app.ok_as(&owner_c, "query($s: String!) { organization(slug: $s) { members { role account { displayName } } } }", json!({ "s": org["slug"] })).await;
        assert_eq!(members["organization"]["members"].as_array().map(Vec::len), Some(2));
        let hidden = app.ok_as(&donor_of(&app).await, "query($s: String!) { organization(slug: $s) { members { role } } }", json!({ "s": org["slug"] })).await;
        assert_eq!(hidden["organization"]["members"], Value::Null);

        // The last owner cannot leave or be demoted.
        let remove = "mutation($i: RemoveOrganizationMemberInput!) { removeOrganizationMember(input: $i) { removedAccountId } }";
        let last = app.gql_as(&owner_c, remove, json!({ "i": { "organizationId": org["id"], "accountId": owner.global_id } })).await;
        assert_eq!(last["errors"][0]["extensions"]["code"], "CONFLICT");
    }
}

async fn donor_of(app: &TestApp) -> Credentials {
    Credentials::account(&app.account("donor", &[Role::Donor]).await)
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.sign_in_per_account_per_minute = 3).await;
    let anon = Credentials::anonymous();
    let attempt = json!({ "i": { "email": "target@example.org", "password": "wrong-password-1" } });
    for _ in 0..3 {
        let body = app.gql_as(&anon, SIGN_IN, attempt.clone()).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    }
    let limited = app.gql_as(&anon, SIGN_IN, attempt).await;
    assert_eq!(limited["errors"][0]["extensions"]["code"], "RATE_LIMITED");
    assert!(limited["errors"][0]["extensions"]["retryAfter"].as_u64().is_some_and(|s| s >= 1), "{limited}");
}

/// Hot sessions are read from the shared cache, and revocation stays immediate: after a
/// sign-out, a refresh (which retires the old session) or a change of roles on one instance,
/// the very next request on the other instance sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_reaches_every_instance_at_once() {
    if !crate::helpers::selected(Backend::Postgres) {
        return;
    }
    let first = crate::helpers::spawn_app(Backend::Postgres).await;
    assert!(first.state.settings.sessions_cacheable(), "PostgreSQL + Redis keeps sessions in the shared cache");
    let second = crate::helpers::spawn_second_instance(&first).await;
    let anon = Credentials::anonymous();
    let data = sign_up(&first, "everywhere@example.org").await;
    let refresh = data["signUp"]["refreshToken"].as_str().expect("refresh").to_owned();
    let access = bearer(&token(&data, "signUp"));
    let me = "{ viewer { roles account { id } } }";
    // Warm both instances' view of the session; the second read costs no statement.
    let id = second.ok_as(&access, me, json!({})).await["viewer"]["account"]["id"].clone();
    first.ok_as(&access, me, json!({})).await;
    let before = second.sql_statements();
    second.ok_as(&access, "{ viewer { isAuthenticated roles } }", json!({})).await;
    assert_eq!(second.sql_statements() - before, 0, "a hot session costs no database statement");

    // Roles changed on the first instance: the next request on the second has them.
    let admin = Credentials::account(&first.account("admin", &[Role::Admin]).await);
    let set_roles = "mutation($i: SetAccountRolesInput!) { setAccountRoles(input: $i) { account { id } } }";
    first.ok_as(&admin, set_roles, json!({ "i": { "accountId": id, "roles": ["DONOR", "REVIEWER"] } })).await;
    let roles = second.ok_as(&access, me, json!({})).await["viewer"]["roles"].clone();
    assert_eq!(roles, json!(["DONOR", "REVIEWER"]), "roles as they are now");

    // A refresh retires the old session: its access token is refused everywhere at once.
    let rotated = first.ok_as(&anon, REFRESH, json!({ "i": { "refreshToken": refresh } })).await;
    let (status, _) = second.send(&access, me, json!({})).await;
    assert_eq!(status, 401, "the retired session's token");
    let access = bearer(&token(&rotated, "refreshSession"));
    second.ok_as(&access, me, json!({})).await;

    // Sign-out on the first instance: the second refuses the token on the next request.
    let refresh = rotated["refreshSession"]["refreshToken"].as_str().expect("refresh");
    assert_eq!(
        first.ok_as(&anon, SIGN_OUT, json!({ "i": { "refreshToken": refresh } })).await["signOut"]["revoked"],
        true
    );
    let (status, body) = second.send(&access, me, json!({})).await;
    assert_eq!((status, body["errors"][0]["extensions"]["code"].as_str()), (401, Some("UNAUTHENTICATED")));
}
