//! Key rotation without a restart: the keys file is rewritten while requests keep coming.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;

const BODY: &str = r#"{"vdn":92,"taskId":"1"}"#;
const NEW_SK: &str = "rotated-Secret-2";
const OK: &str = r#"realstat_keys_reloads_total{result="ok"}"#;
const REJECTED: &str = r#"realstat_keys_reloads_total{result="rejected"}"#;

async fn status_with(app: &TestApp, sk: &str) -> (u16, String) {
    let r = signed_post(&app.api, AK, sk, BODY).await;
    (r.status, result(&r).0)
}

#[actix_web::test]
async fn rotation_takes_effect_without_restart_and_drops_no_request() {
    let app = spawn_app().await;
    assert_eq!(status_with(&app, SK).await, (200, "0100000".into()));
    assert_eq!(status_with(&app, NEW_SK).await.0, 401);
    let m = app.metrics().await;
    assert_eq!(metric(&m, "realstat_keys_loaded"), Some(2.0), "{m}");
    assert_eq!(metric(&m, OK), Some(0.0), "{m}");
    assert_eq!(metric(&m, REJECTED), Some(0.0), "{m}");

    // Background traffic during the rotation: every request must get an HTTP answer.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let traffic = {
        let (api, stop, answered) = (app.api.clone(), stop.clone(), answered.clone());
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let auth = authorization(AK, SK, &api, BODY, &now_timestamp());
                let headers = [("Content-Type", JSON), ("Authorization", auth.as_str())];
                match try_request(&api, "POST", PATH, &headers, BODY.as_bytes()) {
                    Ok(r) if r.status == 200 || r.status == 401 => {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => failures.push(format!("status {}", r.status)),
                    Err(e) => failures.push(e.to_string()),
                }
            }
            failures
        })
    };

    // A broken file: the old keys stay.
    app.write_keys("[[key]]\nak = \"globalaktest\"\n");
    app.wait_metric(REJECTED, |n| n >= 1.0).await;
    assert_eq!(status_with(&app, SK).await, (200, "0100000".into()));
    assert_eq!(
        metric(&app.metrics().await, "realstat_keys_loaded"),
        Some(2.0)
    );

    // The new secret replaces the old one.
    app.write_keys(&format!(
        "[[key]]\nak = \"globalaktest\"\nsk = \"{NEW_SK}\"\nvdns = \"*\"\n"
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    while status_with(&app, NEW_SK).await.0 != 200 {
        assert!(Instant::now() < deadline, "new key not picked up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status_with(&app, SK).await, (401, "0100001".into()));
    assert_eq!(status_with(&app, SCOPED_SK).await.0, 401);
    // Counted just after the swap.
    let m = app.wait_metric(OK, |n| n >= 1.0).await;
    assert_eq!(metric(&m, "realstat_keys_loaded"), Some(1.0), "{m}");

    stop.store(true, Ordering::Relaxed);
    let failures = traffic.join().expect("traffic thread");
    assert!(failures.is_empty(), "dropped requests: {failures:?}");
    assert!(answered.load(Ordering::Relaxed) > 10);
    app.stop().await;
}
