// Callback campaigns: live progress bars and the callback script's identity stop.
// Served from /static (CSP: script-src 'self'); nothing here is inline.
(function () {
  "use strict";

  function refresh(bar) {
    fetch(bar.dataset.progressUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        bar.value = data.percent;
        var label = bar.parentElement.querySelector("[data-progress-label]");
        if (label) { label.textContent = data.finished + " / " + data.total + " (" + data.percent + "%)"; }
      })
      .catch(function () { /* the next refresh tries again */ });
  }

  document.querySelectorAll("progress[data-progress-url]").forEach(function (bar) {
    window.setInterval(function () { refresh(bar); }, 5000);
  });

  var script = document.querySelector("form[data-script]");
  if (script) {
    var opened = Date.now();
    // Step 1: "not the customer" stops the script (G68); the server enforces it as well.
    script.addEventListener("change", function (event) {
      if (event.target.name === "identity") {
        script.classList.toggle("stopped", event.target.value === "no");
      }
    });
    script.addEventListener("submit", function () {
      script.querySelector("[data-duration]").value = String(Math.round((Date.now() - opened) / 1000));
    });
  }
})();
