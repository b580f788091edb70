// Keyboard shortcuts for the review queue; every action also works without this file.
// j/k move between proposals, x selects, a approves, e edits minutes, r focuses the reason,
// A (shift+a) approves the selected ones. Keys are ignored while typing in a field; Escape
// leaves the field for its proposal.
(function () {
  "use strict";
  var selectAll = document.getElementById("select-all");
  if (selectAll) {
    selectAll.addEventListener("change", function () {
      document.querySelectorAll("input.pick").forEach(function (box) { box.checked = selectAll.checked; });
    });
  }
  var rows = Array.prototype.slice.call(document.querySelectorAll(".proposal[tabindex]"));
  if (!rows.length) { return; }
  function current() {
    var el = document.activeElement;
    while (el && !(el.classList && el.classList.contains("proposal"))) { el = el.parentElement; }
    return el;
  }
  function move(step) {
    var at = rows.indexOf(current());
    var next = rows[Math.max(0, Math.min(rows.length - 1, at < 0 ? 0 : at + step))];
    next.focus();
    next.scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (event) {
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "select" || tag === "textarea" || event.ctrlKey || event.metaKey || event.altKey) {
      if (event.key === "Escape") {
        var row = current();
        if (row) { row.focus(); } else if (event.target.blur) { event.target.blur(); }
      }
      return;
    }
    var row = current();
    switch (event.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "x": if (row) { var box = row.querySelector("input.pick"); box.checked = !box.checked; } break;
      case "a": if (row) { row.querySelector("button.approve").click(); } break;
      case "e": if (row) { row.querySelector("input.minutes").select(); } break;
      case "r": if (row) { row.querySelector("input.reason").focus(); } break;
      case "A": document.getElementById("approve-selected").click(); break;
      default: return;
    }
    event.preventDefault();
  });
})();
