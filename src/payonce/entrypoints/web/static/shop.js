// The demo shop's cart: shows prices and the total in the chosen currency, and sends the form
// once (the server prices the lines again from its catalog; this total is only for the eye).
const form = document.getElementById("cart");
const symbols = { CNY: "¥", BRL: "R$ " };

function currency() {
  return form.querySelector("input[name=currency]:checked").value;
}

function format(minor, code) {
  return symbols[code] + (minor / 100).toFixed(2);
}

function refresh() {
  const code = currency();
  let total = 0;
  for (const row of form.querySelectorAll("tbody tr")) {
    const price = Number(row.querySelector(".price").dataset[code.toLowerCase()]);
    const quantity = Math.max(0, Math.min(9, Number(row.querySelector(".qty").value) || 0));
    row.querySelector(".price").textContent = format(price, code);
    total += price * quantity;
  }
  document.getElementById("total").textContent = format(total, code);
  document.getElementById("checkout").disabled = total === 0;
}

form.addEventListener("input", refresh);
form.addEventListener("submit", () => {
  // A second click while the first is on its way would only repeat it (the cart id dedups it).
  setTimeout(() => { document.getElementById("checkout").disabled = true; }, 0);
});
refresh();
