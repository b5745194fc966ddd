// A real Janus (Debian's `janus`, 1.1.x) for the scale-out tests: HTTP API and the streaming
// plugin only, on 127.0.0.1, with an API secret and a streaming admin key so that the plugin has
// to present both. ICE stays on loopback through janus-loopback-ifaddrs.c (LD_PRELOAD; built here
// with gcc on first use). `restart()` brings the same gateway back on the same port, empty, as a
// real restart does.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PLUGIN_DIR } from './homebridge.js';
import { getFreePort, waitForPort } from './ports.js';
import { registerCleanup, spawnTracked, type TrackedProcess } from './processes.js';

const SHIM_SOURCE = fileURLToPath(new URL('./janus-loopback-ifaddrs.c', import.meta.url));
const SHIM = join(PLUGIN_DIR, '.test-artifacts/janus/loopback-ifaddrs.so');
const LIBRARY_DIRS = ['/usr/lib/x86_64-linux-gnu/janus', '/usr/lib/aarch64-linux-gnu/janus', '/usr/lib/janus'];

export interface JanusOptions {
  apiSecret?: string;
  adminKey?: string;
  /** Janus's RTP range for mountpoints and viewers (default a slice of its own per gateway). */
  rtpPortRange?: string;
}

export interface JanusGatewayProcess {
  readonly url: string;
  readonly apiSecret: string;
  readonly adminKey: string;
  process(): TrackedProcess;
  /** Kills it (SIGKILL: a crash, not a polite stop). */
  kill(): Promise<void>;
  /** Starts it again on the same port, with no mountpoints and no sessions. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

function libraryDir(): string {
  const dir = LIBRARY_DIRS.find((d) => existsSync(join(d, 'plugins', 'libjanus_streaming.so')));
  if (!dir) throw new Error('Janus is not installed (apt-get install janus; scripts/setup.sh does it)');
  return dir;
}

function loopbackShim(): string {
  if (existsSync(SHIM) && statSync(SHIM).mtimeMs >= statSync(SHIM_SOURCE).mtimeMs) return SHIM;
  mkdirSync(join(SHIM, '..'), { recursive: true });
  execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-o', SHIM, SHIM_SOURCE, '-ldl'], { stdio: 'pipe' });
  return SHIM;
}

let rangeSlot = 0;

export async function startJanus(options: JanusOptions = {}): Promise<JanusGatewayProcess> {
  const lib = libraryDir();
  const shim = loopbackShim();
  const port = await getFreePort();
  const apiSecret = options.apiSecret ?? 'janus-api-secret';
  const adminKey = options.adminKey ?? 'janus-admin-key';
  const slot = rangeSlot++ % 8;
  const rtpPortRange = options.rtpPortRange ?? `${30000 + slot * 2000}-${30000 + slot * 2000 + 1999}`;
  const dir = mkdtempSync(join(tmpdir(), 'janus-'));
  const [conf, plugins, transports, empty] = ['conf', 'plugins', 'transports', 'empty'].map((name) => join(dir, name)) as [string, string, string, string];
  for (const d of [conf, plugins, transports, empty]) mkdirSync(d);
  symlinkSync(join(lib, 'plugins', 'libjanus_streaming.so'), join(plugins, 'libjanus_streaming.so'));
  symlinkSync(join(lib, 'transports', 'libjanus_http.so'), join(transports, 'libjanus_http.so'));
  const q = (text: string): string => JSON.stringify(text);
  writeFileSync(join(conf, 'janus.jcfg'), `general: {
\tconfigs_folder = ${q(conf)}
\tplugins_folder = ${q(plugins)}
\ttransports_folder = ${q(transports)}
\tevents_folder = ${q(empty)}
\tloggers_folder = ${q(empty)}
\tdebug_level = 4
\tdebug_colors = false
\tinterface = "127.0.0.1"
\tsession_timeout = 60
\tapi_secret = ${q(apiSecret)}
}
media: {
\tipv6 = false
\trtp_port_range = ${q(rtpPortRange)}
}
nat: {
\tice_lite = false
\tice_tcp = false
\tfull_trickle = false
\tice_enforce_list = "lo"
}
events: {
\tbroadcast = false
}
`);
  writeFileSync(join(conf, 'janus.transport.http.jcfg'), `general: {
\tjson = "plain"
\tbase_path = "/janus"
\thttp = true
\tport = ${port}
\tip = "127.0.0.1"
\thttps = false
}
admin: {
\tadmin_http = false
}
`);
  writeFileSync(join(conf, 'janus.plugin.streaming.jcfg'), `general: {
\tadmin_key = ${q(adminKey)}
\tevents = false
}
`);
  let child: TrackedProcess | undefined;
  const launch = async (): Promise<void> => {
    child = spawnTracked('janus', ['--configs-folder', conf, '--disable-colors'], {
      name: `janus:${port}`,
      env: { ...process.env, LD_PRELOAD: shim },
      stdin: 'ignore',
      killGraceMs: 3000,
    });
    await waitForPort(port, { timeoutMs: 15_000 }).catch((error: unknown) => {
      throw new Error(`Janus did not open its HTTP port: ${String(error)}\n${child?.stdoutText().slice(-2000)}`);
    });
  };
  await launch();
  const stop = async (): Promise<void> => {
    await child?.kill();
  };
  const unregister = registerCleanup(async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    url: `http://127.0.0.1:${port}/janus`,
    apiSecret,
    adminKey,
    process: () => {
      if (!child) throw new Error('Janus is not running');
      return child;
    },
    kill: async () => {
      if (!child) return;
      process.kill(child.pid, 'SIGKILL');
      await child.exited;
    },
    restart: launch,
    stop: async () => {
      await stop();
      unregister();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
