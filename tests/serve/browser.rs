//! The demo page in a real browser: headless Chromium, driven through `chromedriver`, places an
//! order with the page's form and shows the notification the websocket brings. Skipped when
//! Chromium or chromedriver is not installed, except under `CI=true`.

use std::path::Path;
use std::time::{Duration, Instant};

use mixio_tests::serve::{MixioServe, demo_manifest, scratch_dir};
use mixio_tests::services;
use mixio_tests::webdriver::{Chromedriver, Session};

const MIXIO: &str = env!("CARGO_BIN_EXE_mixio");

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// The number `N` in a notification line `... arrives in N minutes`.
fn minutes(notifications: &str) -> u64 {
    let after = notifications.split("arrives in ").nth(1).unwrap_or_else(|| panic!("{notifications:?}"));
    let number: String = after.chars().take_while(char::is_ascii_digit).collect();
    assert!(after[number.len()..].starts_with(" minutes"), "{notifications:?}");
    number.parse().unwrap_or_else(|e| panic!("{notifications:?}: {e}"))
}

#[test]
fn the_demo_page_places_an_order_and_shows_the_notification() {
    let Some(driver) = Chromedriver::start() else { return };
    let started = Instant::now();
    let server =
        MixioServe::start(Path::new(MIXIO), &[demo_manifest(&scratch_dir("browser")).to_str().unwrap()], &[]);
    // Letters, digits and `_`: fine as the websocket's path segment.
    let user = services::unique_name("browser");
    runtime().block_on(async {
        let session = Session::new(&driver).await;
        session.goto(&format!("{}/", server.url)).await;
        let user_input = session.find("#user").await;
        session.send_keys(&user_input, &user).await;
        let dish_input = session.find("#dish").await;
        session.send_keys(&dish_input, "ramen").await;
        let order = session.find("#order").await;
        session.click(&order).await;

        let notifications = match session
            .try_wait_until("#notifications", Duration::from_secs(30), |text| text.contains("arrives in"))
            .await
        {
            Ok(text) => text,
            Err(e) => {
                let status = session.text(&session.find("#status").await).await;
                panic!("no notification: {e}\n#status: {status:?}\nthe server's log:\n{}", server.log());
            }
        };
        let mins = minutes(&notifications);
        assert!((30..=60).contains(&mins), "{notifications:?}");

        // The order's answer may come after its notification.
        let status = session
            .try_wait_until("#status", Duration::from_secs(10), |text| {
                text.contains("201") || text.contains("placed")
            })
            .await
            .unwrap_or_else(|e| panic!("{e}\nthe server's log:\n{}", server.log()));
        assert!(!status.contains("failed"), "{status:?}");
        eprintln!("#status: {status:?}; #notifications: {notifications:?}");
        session.quit().await;
    });
    let status = server.stop();
    assert!(status.success(), "mixio serve exited with {status}");
    eprintln!("the browser test took {:?} (after chromedriver started)", started.elapsed());
}
