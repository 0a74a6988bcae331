/* Keep the dashboard's session token fresh: App Bridge inside Shopify admin, /demo/session-token in the demo.
   Without this script every link and form still works while the page's token is fresh (one minute). */
(function () {
  "use strict";
  var demo = document.body && document.body.getAttribute("data-demo") === "1";

  function freshToken() {
    if (window.shopify && typeof window.shopify.idToken === "function") {
      return window.shopify.idToken();
    }
    if (demo) {
      return fetch("/demo/session-token", { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) {
          if (!r.ok) { throw new Error("no demo token"); }
          var type = r.headers.get("Content-Type") || "";
          return type.indexOf("json") >= 0 ? r.json() : r.text();
        })
        .then(function (body) {
          if (typeof body === "string") { return body.trim(); }
          return body.token || body.sessionToken || body.idToken || body.id_token ||
            (body.data && (body.data.token || body.data.sessionToken));
        });
    }
    return Promise.reject(new Error("no token source"));
  }

  function sameApp(url) { return url.origin === window.location.origin; }

  function withToken(href, token) {
    var url = new URL(href, window.location.href);
    if (sameApp(url)) { url.searchParams.set("id_token", token); }
    return url.toString();
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-nav]");
    if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) { return; }
    event.preventDefault();
    freshToken().then(function (token) { window.location.assign(withToken(link.href, token)); },
                      function () { window.location.assign(link.href); });
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset.refreshed === "1") { return; }
    var confirmText = form.getAttribute("data-confirm");
    if (confirmText && !window.confirm(confirmText)) { event.preventDefault(); return; }
    event.preventDefault();
    var submitter = event.submitter;
    function go(token) {
      if (token) {
        if ((form.method || "get").toLowerCase() === "get") {
          var field = form.querySelector("[data-token-field]");
          if (!field) {
            field = document.createElement("input");
            field.type = "hidden"; field.name = "id_token"; field.setAttribute("data-token-field", "");
            form.appendChild(field);
          }
          field.value = token;
        } else {
          form.action = withToken(form.getAttribute("action") || window.location.href, token);
        }
      }
      if (submitter && submitter.name) {
        var carry = document.createElement("input");
        carry.type = "hidden"; carry.name = submitter.name; carry.value = submitter.value;
        form.appendChild(carry);
      }
      form.dataset.refreshed = "1";
      form.submit();
    }
    freshToken().then(go, function () { go(null); });
  });

  document.addEventListener("change", function (event) {
    var all = event.target.closest && event.target.closest("[data-select-all]");
    if (!all) { return; }
    var boxes = document.querySelectorAll("#review-list input[name=ids]");
    for (var i = 0; i < boxes.length; i++) { boxes[i].checked = all.checked; }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    if (!button || !navigator.clipboard) { return; }
    navigator.clipboard.writeText(button.getAttribute("data-copy")).then(function () { button.textContent = "Copied"; });
  });
})();
