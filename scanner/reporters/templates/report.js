(function () {
  "use strict";
  // Nothing heavy at load: a large report must open fast. The rows are read, and their text
  // indexed, on the first sort or filter.
  var box = document.getElementById("findings");
  var controls = document.getElementById("controls");
  if (!box || !controls) { return; }
  var head = box.querySelector("thead tr");
  var text = document.getElementById("q");
  var severity = document.getElementById("fs");
  var verification = document.getElementById("fv");
  var count = document.getElementById("shown");
  var total = Number(box.getAttribute("data-rows")) || 0;
  var capacity = Number(box.getAttribute("data-chunk")) || 500;
  var rows = null, hay = null, chunks = null, timer = 0;
  controls.hidden = false;
  document.documentElement.setAttribute("data-js", "on");
  count.textContent = total + " shown";

  function load() {
    if (rows) { return; }
    rows = Array.prototype.slice.call(box.querySelectorAll("tr[data-s]"));
    hay = new Map();
    rows.forEach(function (row) { hay.set(row, row.textContent.toLowerCase()); });
    chunks = Array.prototype.slice.call(box.querySelectorAll(".chunk"));
  }

  // Shown rows first, in order, 500 to a table; tables left with nothing to show are hidden
  // (the first keeps the headings).
  function place() {
    var shown = rows.filter(function (row) { return !row.hidden; });
    var order = shown.concat(rows.filter(function (row) { return row.hidden; }));
    chunks.forEach(function (chunk, index) {
      var body = chunk.querySelector("tbody");
      var fragment = document.createDocumentFragment();
      order.slice(index * capacity, (index + 1) * capacity).forEach(function (row) { fragment.appendChild(row); });
      body.appendChild(fragment);
      chunk.hidden = index > 0 && index * capacity >= shown.length;
    });
    count.textContent = shown.length === rows.length ? rows.length + " shown" : shown.length + " of " + rows.length + " shown";
  }

  function filter() {
    load();
    var words = text.value.toLowerCase().split(/\s+/).filter(Boolean);
    rows.forEach(function (row) {
      var line = hay.get(row);
      row.hidden = !((!severity.value || row.getAttribute("data-s") === severity.value) &&
        (!verification.value || row.getAttribute("data-v") === verification.value) &&
        words.every(function (w) { return line.indexOf(w) !== -1; }));
    });
    place();
  }
  text.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(filter, 120); });
  [severity, verification].forEach(function (el) { el.addEventListener("input", filter); });

  var rank = {critical: "0", high: "1", medium: "2", low: "3", info: "4"};
  if (!head) { return; }
  Array.prototype.forEach.call(head.cells, function (th, index) {
    var button = document.createElement("button");
    button.type = "button";
    while (th.firstChild) { button.appendChild(th.firstChild); }
    th.appendChild(button);
    button.addEventListener("click", function () {
      load();
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(head.cells, function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var keyed = rows.map(function (row, position) {
        var key = index === 0 ? rank[row.getAttribute("data-s")] || "9" : row.cells[index].textContent.trim().toLowerCase();
        return {key: key, row: row, position: position};
      });
      keyed.sort(function (a, b) {
        var order = a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
        return (ascending ? order : -order) || a.position - b.position;
      });
      rows = keyed.map(function (entry) { return entry.row; });
      place();
    });
  });
}());
