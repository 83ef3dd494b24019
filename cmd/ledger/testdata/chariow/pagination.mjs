// From reference/sales-chariow.txt, "Pagination", verbatim; the test replaces only the base URL and
// the key. The last line is the harness's, to read the result.
let cursor = null;
let allSales = [];

do {
  const url = cursor
    ? `https://api.chariow.com/v1/sales?cursor=${cursor}`
    : 'https://api.chariow.com/v1/sales';

  const response = await fetch(url, {
    headers: { 'Authorization': 'Bearer sk_live_your_api_key' }
  });

  const result = await response.json();
  allSales = [...allSales, ...result.data];
  cursor = result.pagination.next_cursor;
} while (cursor);

console.log(JSON.stringify(allSales.map(s => s.id)));
