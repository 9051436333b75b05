// ringfence console: progressive enhancement only. Without JavaScript every
// page works; with it the releases board refreshes itself.
(function () {
  "use strict";
  var board = document.getElementById("board");
  if (!board || !window.fetch) { return; }
  var status = document.getElementById("board-status");
  var etag = board.getAttribute("data-etag");
  var url = board.getAttribute("data-refresh");
  var timer = null;
  function poll() {
    // Never pull the table from under someone using it with the keyboard.
    if (board.contains(document.activeElement)) { return; }
    var headers = {};
    if (etag) { headers["If-None-Match"] = etag; }
    fetch(url, { headers: headers, credentials: "same-origin", cache: "no-cache" }).then(function (resp) {
      if (resp.redirected || resp.status === 401) {
        clearInterval(timer);
        status.textContent = "Your session ended: reload the page to log in again.";
        return;
      }
      if (resp.status !== 200) { return; }
      etag = resp.headers.get("ETag");
      return resp.text().then(function (html) {
        board.innerHTML = html;
        status.textContent = "Updated at " + new Date().toLocaleTimeString() + ".";
      });
    }).catch(function () {
      status.textContent = "Could not reach the server; retrying.";
    });
  }
  timer = setInterval(poll, 3000);
})();
