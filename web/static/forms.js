// After a refused form (web/forms.py: post/redirect/get with the errors in the
// session), move the focus to the first field marked aria-invalid, or to the
// confirmation or form-wide error shown instead.  Buttons marked data-confirm
// ask before their form is sent (the server asks again without JavaScript).
"use strict";

function focusFirstProblem() {
  const target = document.querySelector("[aria-invalid=true], [data-focus], #form-error");
  if (target) {
    target.focus();
    if (target.scrollIntoView) target.scrollIntoView({ block: "center" });
  }
}

function askBeforeSending() {
  for (const button of document.querySelectorAll("button[data-confirm]")) {
    button.addEventListener("click", (event) => {
      if (!window.confirm(button.dataset.confirm)) event.preventDefault();
    });
  }
}

// the policy form: switching "require media security" off is confirmed first
function warnBeforeInsecure() {
  const form = document.getElementById("policy-form");
  const box = document.getElementById("require-media-security");
  if (!form || !box) return;
  form.addEventListener("submit", (event) => {
    if (box.dataset.wasChecked === "true" && !box.checked &&
        !window.confirm("Switch media security off? Callers could then join with unencrypted " +
                        "audio and chat that anyone on the network path can listen to.")) {
      event.preventDefault();
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  focusFirstProblem();
  askBeforeSending();
  warnBeforeInsecure();
});
// a redirect to "#fragment" scrolls there after the load and takes the focus with it:
// give it back to the field in error once that is done
window.addEventListener("load", () => setTimeout(focusFirstProblem, 0));
