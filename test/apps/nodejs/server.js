// A plain http server: no dependencies, so it builds without a registry.
const http = require("http");

const port = process.env.PORT || 8080;
http
  .createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/plain" });
    res.end(`Hello from Flynn on port ${port}\n`);
  })
  .listen(port, () => console.log(`listening on ${port}`));

process.on("SIGTERM", () => process.exit(0));
