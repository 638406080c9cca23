(function () {
  "use strict";
  var table = document.getElementById("findings");
  if (!table) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var controls = document.getElementById("controls");
  var text = document.getElementById("q");
  var severity = document.getElementById("fs");
  var verification = document.getElementById("fv");
  var count = document.getElementById("shown");
  controls.hidden = false;
  document.documentElement.setAttribute("data-js", "on");

  function filter() {
    var words = text.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    rows.forEach(function (row) {
      var hay = row.textContent.toLowerCase();
      var ok = (!severity.value || row.getAttribute("data-s") === severity.value) &&
        (!verification.value || row.getAttribute("data-v") === verification.value) &&
        words.every(function (w) { return hay.indexOf(w) !== -1; });
      row.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = shown + " of " + rows.length + " shown";
  }
  [text, severity, verification].forEach(function (el) { el.addEventListener("input", filter); });

  var rank = {critical: "0", high: "1", medium: "2", low: "3", info: "4"};
  function key(row, index) {
    if (index === 0) { return rank[row.getAttribute("data-s")] || "9"; }
    return row.cells[index].textContent.trim().toLowerCase();
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
    var button = document.createElement("button");
    button.type = "button";
    while (th.firstChild) { button.appendChild(th.firstChild); }
    th.appendChild(button);
    button.addEventListener("click", function () {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var numeric = th.classList.contains("num");
      rows.sort(function (a, b) {
        var x = key(a, index), y = key(b, index);
        var order = numeric ? (parseFloat(x) || 0) - (parseFloat(y) || 0) : (x < y ? -1 : x > y ? 1 : 0);
        return ascending ? order : -order;
      });
      var fragment = document.createDocumentFragment();
      rows.forEach(function (row) { fragment.appendChild(row); });
      body.appendChild(fragment);
    });
  });
  count.textContent = rows.length + " shown";
}());
