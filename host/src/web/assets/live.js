// Keeps the status page current: every few seconds, fetch the page again and swap in its
// <main>. The page is complete without this script; it only saves pressing reload.
"use strict";
(function () {
  const EVERY_MS = 3000;
  document.documentElement.dataset.live = "on";
  async function refresh() {
    try {
      const response = await fetch(location.href, { cache: "no-store" });
      if (response.ok) {
        const page = new DOMParser().parseFromString(await response.text(), "text/html");
        const fresh = page.querySelector("main");
        const old = document.querySelector("main");
        if (fresh && old) old.replaceWith(fresh);
        document.documentElement.dataset.live = "on";
      } else {
        document.documentElement.dataset.live = "error " + response.status;
      }
    } catch (e) {
      document.documentElement.dataset.live = "offline";
    }
    setTimeout(refresh, EVERY_MS);
  }
  setTimeout(refresh, EVERY_MS);
})();
