// The QA workspace's player: playback speed and 5-second skips (no inline scripts: CSP script-src 'self').
(function () {
  "use strict";
  var audio = document.getElementById("qa-audio");
  if (!audio) {
    return;
  }
  var speed = document.getElementById("qa-speed");
  if (speed) {
    speed.addEventListener("change", function () {
      audio.playbackRate = parseFloat(speed.value) || 1;
    });
  }
  audio.addEventListener("play", function () {
    if (speed) {
      audio.playbackRate = parseFloat(speed.value) || 1;
    }
  });
  var skips = document.querySelectorAll(".qa-skip");
  for (var i = 0; i < skips.length; i += 1) {
    skips[i].addEventListener("click", function (event) {
      var step = parseFloat(event.currentTarget.getAttribute("data-skip")) || 0;
      var end = isFinite(audio.duration) ? audio.duration : audio.currentTime + step;
      audio.currentTime = Math.min(Math.max(0, audio.currentTime + step), end);
    });
  }
})();
