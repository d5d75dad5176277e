//! The dashboard in a real browser: headless Chromium (Debian's `chromium`)
//! loads the page from the API server, the page fetches identities, sightings,
//! cameras and crops with the token, and the test checks the screenshot's
//! pixels: day and night thumbnails side by side, day/night links highlighted.

use crate::support::*;
use image::RgbImage;
use std::process::Command;

fn chromium() -> &'static str {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("chromium not found: `apt-get install -y chromium` (scripts/setup.sh installs it)")
}

fn screenshot(url: &str) -> RgbImage {
    let profile = tempfile::tempdir().unwrap();
    let out = profile.path().join("shot.png");
    let status = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--window-size=1200,700",
            // Lets the page's fetches and rendering finish before the shot.
            "--virtual-time-budget=8000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().join("profile").display()))
        .arg(format!("--screenshot={}", out.display()))
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "chromium exited with {status}");
    let img = image::open(&out).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", out.display())).to_rgb8();
    // Kept for a human to look at when the test fails.
    if let Ok(dir) = std::env::var("VIREID_SCREENSHOT_DIR") {
        let _ = img.save(std::path::Path::new(&dir).join(format!("dashboard-{}.png", std::process::id())));
    }
    img
}

fn near(p: [u8; 3], c: [u8; 3], tol: i32) -> bool {
    p.iter().zip(c).all(|(a, b)| (*a as i32 - b as i32).abs() <= tol)
}

/// Bounding box (x0, y0, x1, y1) and count of pixels near `c` with x in `xs`
/// that sit in a solid 3×3 block of that colour (anti-aliased text has none).
fn find(img: &RgbImage, c: [u8; 3], xs: std::ops::Range<u32>) -> Option<(u32, u32, u32, u32, usize)> {
    let (w, h) = img.dimensions();
    let solid = |x: u32, y: u32| {
        (0..3).all(|dy| (0..3).all(|dx| x + dx < w && y + dy < h && near(img.get_pixel(x + dx, y + dy).0, c, 6)))
    };
    let (mut x0, mut y0, mut x1, mut y1, mut n) = (u32::MAX, u32::MAX, 0, 0, 0);
    for (x, y, p) in img.enumerate_pixels() {
        if xs.contains(&x) && near(p.0, c, 6) && solid(x, y) {
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
            n += 1;
        }
    }
    (n > 0).then_some((x0, y0, x1, y1, n))
}

const HEADER: [u8; 3] = [0x1f, 0x2a, 0x44];
const LINK_ORANGE: [u8; 3] = [0xff, 0x8c, 0x00];
const RGB_CROP: [u8; 3] = [220, 20, 20];
const THERMAL_CROP: [u8; 3] = [128, 128, 128];
const OTHER_CROP: [u8; 3] = [20, 20, 220];

#[test]
fn dashboard_shows_day_night_pairs_and_highlights_links() {
    let srv = start(MemoryGallery::seeded());
    let img = screenshot(&format!("http://{}/#token={TOKEN}", srv.addr));
    let (w, _) = img.dimensions();
    assert!(find(&img, HEADER, 0..w).is_some_and(|b| b.4 > 1000), "no header bar: the page did not render");

    // Identities column (left half): identity 1's day (red) and night (grey)
    // thumbnails side by side on one row, identity 2's day thumbnail (blue).
    let left = 0..w / 2;
    let day = find(&img, RGB_CROP, left.clone()).expect("identity 1's RGB thumbnail is not on the page");
    let night = find(&img, THERMAL_CROP, left.clone()).expect("identity 1's thermal thumbnail is not on the page");
    assert!(day.4 >= 30 * 70 && night.4 >= 30 * 70, "thumbnails too small: {day:?} {night:?}");
    assert!(night.0 > day.2, "night thumbnail should be right of the day one: {day:?} {night:?}");
    assert!(night.1.abs_diff(day.1) <= 4, "day and night thumbnails should be on one row: {day:?} {night:?}");
    let other = find(&img, OTHER_CROP, left.clone()).expect("identity 2's thumbnail is not on the page");
    assert!(other.1 > day.3, "identity 2 is listed below identity 1");

    // The linked identity's card is outlined in orange; identity 2's is not.
    let orange = find(&img, LINK_ORANGE, left.clone()).expect("the day/night link is not highlighted");
    assert!(orange.1 < day.1 && orange.3 > day.3, "highlight should frame identity 1: {orange:?} {day:?}");
    assert!(orange.3 < other.1, "identity 2 (not linked) must not be highlighted: {orange:?} {other:?}");

    // Live sightings column (right half): the thermal sighting linked day/night is highlighted too.
    let right = w / 2..w;
    let sighting = find(&img, THERMAL_CROP, right.clone()).expect("the thermal sighting's crop is not on the page");
    let orange_r = find(&img, LINK_ORANGE, right).expect("the linked sighting is not highlighted");
    assert!(orange_r.1 <= sighting.1 && orange_r.3 >= sighting.3, "{orange_r:?} {sighting:?}");
}

#[test]
fn dashboard_without_a_valid_token_shows_no_data() {
    let srv = start(MemoryGallery::seeded());
    let img = screenshot(&format!("http://{}/#token=not-the-token-0123456789", srv.addr));
    let (w, _) = img.dimensions();
    assert!(find(&img, HEADER, 0..w).is_some(), "the page itself should still render");
    for (what, c) in [("RGB crop", RGB_CROP), ("thermal crop", THERMAL_CROP), ("link highlight", LINK_ORANGE)] {
        assert!(find(&img, c, 0..w).is_none(), "{what} visible with a wrong token");
    }
    // No empty (white) panels under the token form: `main { display: grid }` once overrode `hidden`.
    let white = find(&img, [255, 255, 255], w / 2..w).map_or(0, |f| f.4);
    assert!(white < 2000, "{white} white panel pixels in the right half with a wrong token");
}
