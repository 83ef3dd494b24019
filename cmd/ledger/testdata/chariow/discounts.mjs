// From reference/sales-chariow.txt, "Analyse discount code usage and effectiveness", verbatim; the test
// replaces only the base URL and the key. The last line is the harness's, to read the result as JSON.
const response = await fetch(
  'https://api.chariow.com/v1/sales?status=completed&start_date=2025-01-01',
  { headers: { 'Authorization': 'Bearer sk_live_your_api_key' }}
);

const result = await response.json();

// Group by discount code
const discountStats = result.data
  .filter(sale => sale.discount)
  .reduce((acc, sale) => {
    const code = sale.discount.code;
    if (!acc[code]) {
      acc[code] = { uses: 0, revenue: 0, discountGiven: 0 };
    }
    acc[code].uses++;
    acc[code].revenue += sale.amount.amount;
    acc[code].discountGiven += sale.discount_amount.amount;
    return acc;
  }, {});

console.log(discountStats);
console.log(JSON.stringify(discountStats));
