// From reference/sales-chariow.txt, "Calculate total revenue for a specific period", verbatim; the
// test replaces only the base URL and the key.
const response = await fetch(
  'https://api.chariow.com/v1/sales?status=completed&start_date=2025-01-01&end_date=2025-01-31',
  { headers: { 'Authorization': 'Bearer sk_live_your_api_key' }}
);

const result = await response.json();
const totalRevenue = result.data.reduce(
  (sum, sale) => sum + sale.amount.amount,
  0
);

console.log(`Total revenue: ${totalRevenue / 100}`); // Convert from smallest unit
