// Live activity feed: resumes after the feed sequence (`seq`) the server rendered, then follows the SSE stream.
(function () {
  "use strict";
  var list = document.getElementById("feed");
  var status = document.getElementById("live-status");
  if (!list || !window.EventSource) { return; }
  var seen = {};
  Array.prototype.forEach.call(list.querySelectorAll("li[data-id]"), function (li) { seen[li.dataset.id] = true; });
  var after = list.dataset.after;
  var url = list.dataset.stream + (after ? "?after=" + encodeURIComponent(after) : "");
  var source = new EventSource(url);
  var english = list.dataset.lang === "en";
  var items = JSON.parse(list.dataset.items || "{}");

  // The server's format on Jakarta's clock (UTC+7, no daylight saving), whatever the browser's time zone.
  function wib(iso) {
    var d = new Date(new Date(iso).getTime() + 7 * 3600 * 1000);
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return two(d.getUTCDate()) + "-" + two(d.getUTCMonth() + 1) + "-" + d.getUTCFullYear() + " " +
      two(d.getUTCHours()) + ":" + two(d.getUTCMinutes()) + " WIB";
  }

  function render(entry) {
    var li = document.createElement("li");
    li.className = "entry fresh kind-" + entry.kind;
    li.dataset.id = entry.id;
    var time = document.createElement("time");
    time.dateTime = entry.occurred_at;
    time.textContent = wib(entry.occurred_at);
    var text = document.createElement("span");
    text.className = "text";
    var who = document.createElement("strong");
    who.textContent = (english && !entry.donor_named) ? "Anonymous collaborator" : entry.donor_name;
    var verb = list.dataset["verb" + entry.kind.charAt(0).toUpperCase() + entry.kind.slice(1)] || entry.kind;
    var qty = entry.kind === "delivered" ? entry.delivered_quantity : entry.quantity;
    text.appendChild(who);
    text.appendChild(document.createTextNode(" " + verb + " " + qty + " " + (items[entry.item] || entry.item) + " " +
      list.dataset.for + " " + (entry.recipient_name || entry.recipient_id)));
    li.appendChild(time);
    li.appendChild(text);
    return li;
  }

  source.addEventListener("open", function () { status.textContent = list.dataset.live; });
  // Fell too far behind for a replay: the page shows the current feed again and resumes from there.
  source.addEventListener("reset", function () { source.close(); window.location.reload(); });
  source.addEventListener("feed", function (message) {
    var entry = JSON.parse(message.data);
    if (seen[entry.id]) { return; }
    seen[entry.id] = true;
    list.insertBefore(render(entry), list.firstChild);
    while (list.children.length > 50) { list.removeChild(list.lastChild); }
  });
}());
