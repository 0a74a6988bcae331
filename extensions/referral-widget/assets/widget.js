/* referral-plugin storefront script: keeps ?ref= in the cart, and runs the referral widget.
   No framework, no dependencies; safe to load twice. */
(function (w, d) {
  "use strict";
  if (w.ReferralWidget) return;

  var KEY = "rp_ref", CART_KEY = "rp_ref_cart", DAYS = 30, CODE = /^[A-Za-z0-9_-]{3,32}$/;

  function store(kind) {
    try { var s = w[kind]; s.setItem("rp_t", "1"); s.removeItem("rp_t"); return s; } catch (e) { return null; }
  }
  var local = store("localStorage"), session = store("sessionStorage");

  function root() {
    var r = w.Shopify && w.Shopify.routes && w.Shopify.routes.root;
    return r || "/";
  }

  /* Remember the code from the URL (30 days), then put it on the cart once per session so the
     order's note_attributes carry it, whatever device-side cookies do later. */
  function rememberRef() {
    var code = null, now = Date.now();
    try { code = new URLSearchParams(w.location.search).get("ref"); } catch (e) { /* old browser */ }
    if (code && CODE.test(code)) {
      code = code.toUpperCase();
      if (local) local.setItem(KEY, JSON.stringify({ c: code, t: now }));
    } else {
      code = null;
      var saved = null;
      try { saved = local && JSON.parse(local.getItem(KEY) || "null"); } catch (e) { saved = null; }
      if (saved && CODE.test(saved.c) && now - saved.t < DAYS * 864e5) code = saved.c;
    }
    if (!code || (session && session.getItem(CART_KEY) === code)) return null;
    return w.fetch(root() + "cart/update.js", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ attributes: { referral_code: code } })
    }).then(function (res) {
      if (res.ok && session) session.setItem(CART_KEY, code);
      return res.ok;
    }, function () { return false; });
  }

  function say(widget, text) {
    var live = widget.querySelector("[data-rp-live]");
    if (!live) return;
    live.textContent = "";
    /* A fresh node makes screen readers announce the same message twice in a row. */
    setTimeout(function () { live.textContent = text; }, 30);
  }

  function copy(text, field) {
    if (navigator.clipboard && w.isSecureContext) {
      return navigator.clipboard.writeText(text).then(function () { return true; }, function () { return legacyCopy(field); });
    }
    return Promise.resolve(legacyCopy(field));
  }

  function legacyCopy(field) {
    if (!field) return false;
    field.focus();
    field.select();
    try { return d.execCommand("copy"); } catch (e) { return false; }
  }

  function el(tag, cls, text) {
    var node = d.createElement(tag);
    if (cls) node.className = cls;
    if (text) node.textContent = text;
    return node;
  }

  function showResults(list, body) {
    list.textContent = "";
    (body.results || []).forEach(function (item) {
      var li = el("li", "rp-result rp-result-" + item.status);
      li.appendChild(el("span", "rp-result-who", item.display || item.identifier || item.input || "(empty)"));
      li.appendChild(el("span", "rp-result-msg", item.message || item.status));
      if (item.sendYourself) {
        var a = el("a", "rp-link-button", "Send it yourself");
        a.href = item.sendYourself;
        li.appendChild(a);
      }
      list.appendChild(li);
    });
  }

  /* The stats sit below the form: count the friends just invited, so "Invited" is not left stale. */
  function countInvited(form, body) {
    var widget = form.closest("[data-rp-widget]");
    var stat = widget && widget.querySelector("[data-rp-stat=invited]");
    var created = body.summary && body.summary.created;
    if (!stat || !created) return;
    var now = parseInt(stat.textContent, 10);
    if (!isNaN(now)) stat.textContent = String(now + created);
  }

  function showError(list, message) {
    list.textContent = "";
    list.appendChild(el("li", "rp-result rp-result-invalid", message));
  }

  function bindInvite(form) {
    var list = form.querySelector("[data-rp-results]");
    var field = form.querySelector("textarea, input[name=friends]");
    var button = form.querySelector("[type=submit]");
    var token = form.querySelector("input[name=token]");
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var friends = (field.value || "").split(/[\n,;]+/).map(function (s) { return s.trim(); }).filter(Boolean);
      if (!friends.length) { showError(list, "Enter at least one email address or mobile number."); field.focus(); return; }
      button.disabled = true;
      form.setAttribute("aria-busy", "true");
      w.fetch(form.action, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-Referral-Token": token ? token.value : "" },
        body: JSON.stringify({ token: token ? token.value : "", friends: friends })
      }).then(function (res) {
        return res.json().then(function (body) { return { ok: res.ok, body: body }; }, function () { return { ok: false, body: {} }; });
      }).then(function (r) {
        if (r.ok) {
          showResults(list, r.body);
          countInvited(form, r.body);
          var keep = (r.body.results || []).filter(function (i) { return i.status === "invalid"; }).map(function (i) { return i.input; });
          field.value = keep.join("\n");
        } else {
          showError(list, (r.body.error && r.body.error.message) || "Something went wrong. Please try again.");
        }
      }, function () {
        showError(list, "You seem to be offline. Please try again.");
      }).then(function () {
        button.disabled = false;
        form.removeAttribute("aria-busy");
      });
    });
  }

  function init(scope) {
    var widgets = (scope || d).querySelectorAll("[data-rp-widget]:not([data-rp-ready])");
    Array.prototype.forEach.call(widgets, function (widget) {
      widget.setAttribute("data-rp-ready", "");
      var linkField = widget.querySelector("[data-rp-link]");
      Array.prototype.forEach.call(widget.querySelectorAll("[data-rp-copy]"), function (btn) {
        btn.addEventListener("click", function () {
          var value = btn.getAttribute("data-rp-copy");
          copy(value, value === (linkField && linkField.value) ? linkField : null).then(function (ok) {
            say(widget, ok ? btn.getAttribute("data-rp-copied") || "Copied" : "Select the text and copy it.");
          });
        });
      });
      var share = widget.querySelector("[data-rp-native-share]");
      if (share && navigator.share) {
        share.parentNode.classList.add("rp-on");
        share.addEventListener("click", function () {
          navigator.share({
            title: share.getAttribute("data-rp-title") || "",
            text: share.getAttribute("data-rp-text") || "",
            url: share.getAttribute("data-rp-url")
          }).catch(function () { /* the shopper closed the sheet */ });
        });
      }
      Array.prototype.forEach.call(widget.querySelectorAll("form[data-rp-invite]"), bindInvite);
    });
  }

  /* Theme section blocks hold a placeholder with data-rp-src; fill it from the app proxy. */
  function load(scope) {
    var holders = (scope || d).querySelectorAll("[data-rp-src]:not([data-rp-ready])");
    Array.prototype.forEach.call(holders, function (holder) {
      holder.setAttribute("data-rp-ready", "");
      w.fetch(holder.getAttribute("data-rp-src"), { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (res) { return res.ok ? res.text() : Promise.reject(res.status); })
        .then(function (html) { holder.innerHTML = html; holder.removeAttribute("aria-busy"); init(holder); },
          function () { holder.removeAttribute("aria-busy"); });
    });
  }

  function start() { load(); init(); }

  w.ReferralWidget = { init: init, load: load, rememberRef: rememberRef };
  w.ReferralWidget.ready = rememberRef() || Promise.resolve(null);
  if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", start); else start();
})(window, document);
