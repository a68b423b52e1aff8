// Where the page finds the API, with which key, and what it shows. A partner edits these
// defaults; each can also be given in the page's address (?api=…&key=…&campaign=…&event=…).
const defaults = {
  // The API's origin, without a trailing slash.
  api: "https://api.example.org",
  // A publishable key (ib_pub_…) bound to this site's origin, with the DONATE and REGISTER scopes.
  key: "ib_pub_replace-me",
  // Global IDs of the campaign and the event to show.
  campaign: "",
  event: "",
};

const params = new URLSearchParams(location.search);

export const config = Object.fromEntries(
  Object.entries(defaults).map(([name, value]) => [name, params.get(name) ?? value]),
);
