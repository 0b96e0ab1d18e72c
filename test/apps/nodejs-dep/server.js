// Answers with what its one dependency says: a build that did not fetch
// it from the registry fails, and so does the app.
const http = require("http");
const greeting = require("flynn-walk-greeting");

const port = process.env.PORT || 8080;
http
  .createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/plain" });
    res.end(`${greeting()} on port ${port}\n`);
  })
  .listen(port, () => console.log(`listening on ${port}`));

process.on("SIGTERM", () => process.exit(0));
