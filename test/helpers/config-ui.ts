/**
 * The real Homebridge UI (npm homebridge-config-ui-x) with this plugin installed, for end-to-end
 * tests of the plugin's settings page:
 *
 *   const ui = await startConfigUi({ platform: null });       // a fresh install: no plugin block yet
 *   const browser = await launchChromium();
 *   const page = await browser.context.newPage();
 *   await ui.completeSetupInBrowser(page);                     // or startConfigUi({ setup: 'api' })
 *   const dialog = await ui.openPluginSettings(page);          // Plugins → ⋮ → Plugin Config
 *   ...fill the form, click Save...
 *   ui.pluginBlocks();                                         // what config.json now holds
 *   await ui.stop();
 *
 * Layout, as on a real install: a temporary folder with `storage/` (Homebridge's -U: config.json,
 * auth.json, ...) and `node_modules/` holding symlinks to this checkout (as
 * homebridge-webrtc-cameras) and to homebridge-config-ui-x. Both Homebridge and the UI get that
 * node_modules as their only plugin path (`-P` with strict plugin resolution), which is how the UI
 * finds the plugin and its config.schema.json (and, later, its homebridge-ui/ folder).
 *
 * The UI runs as `standalone.js` next to a Homebridge child that this helper starts itself (not
 * under `hb-service run`): hb-service always puts the UI in "insecure mode", and the UI then starts
 * an mDNS (Bonjour) search for bridges on every interface at once. The test machines may only use
 * loopback, and mDNS does not cross it anyway, so the UI is told the bridge's address and port
 * through config.json (`bridge.port`, bound to 127.0.0.1) and never searches. Everything listens on
 * 127.0.0.1 with free ports.
 *
 * The schema form is always reachable: with `"customUi": true` in config.schema.json the dialog
 * first shows the plugin's own page; `openSchemaForm(page)` then clicks through to the form.
 * Homebridge loads dist/, so build first (`npm run build`; the helper builds once when dist/ is
 * missing).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Frame, Locator, Page } from 'playwright-core';
import { DEFAULT_PIN, HomebridgeProcess, PLUGIN_DIR, randomBridgeUsername, type PlatformBlock } from './homebridge.js';
import { getFreePorts, LOOPBACK, waitForPort } from './ports.js';
import { registerCleanup } from './processes.js';
import { waitFor } from './wait.js';

export const PLUGIN_NAME = 'homebridge-webrtc-cameras';
export const PLUGIN_ALIAS = 'WebRTCCameras';
export const CONFIG_UI_DIR = realpathSync(join(PLUGIN_DIR, 'node_modules/homebridge-config-ui-x'));
const STANDALONE = join(CONFIG_UI_DIR, 'dist/bin/standalone.js');

/**
 * The custom UI's button that shows the schema form (it calls `homebridge.showSchemaForm()`);
 * `openSchemaForm()` clicks the first button in the plugin's page whose name matches.
 */
export const SCHEMA_FORM_BUTTON = /all settings|settings form|schema form/i;

const ANSI_COLOUR = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');
/** "Homebridge UI v5.28.0 is listening on 127.0.0.1 port 18581." */
const LISTENING_LINE = /Homebridge UI v(\S+) is listening on (\S+) port (\d+)/;

export interface ConfigUiOptions {
  /**
   * The plugin's platform block in the initial config.json; `null` (the default) for a fresh
   * install that has no block yet, as after `npm install` of the plugin.
   */
  platform?: PlatformBlock | null;
  /**
   * The first-run admin set-up: `'api'` (default) creates the admin through the UI's own set-up
   * REST endpoints, `'none'` leaves it to the test (`completeSetupInBrowser(page)`).
   */
  setup?: 'api' | 'none';
  /** The admin account made by the set-up. Default: `admin` and a random password. */
  admin?: { username: string; password: string };
  /** Merged into the UI's own `"platform": "config"` block (e.g. `{ lightingMode: 'dark' }`). */
  uiConfig?: Record<string, unknown>;
  /** Start Homebridge too (default true). The settings page works without it. */
  homebridge?: boolean;
  /**
   * The folder installed as homebridge-webrtc-cameras (default: this checkout). The helper's own
   * test uses a fixture plugin with a custom UI; Homebridge cannot run such a fixture, so pair it
   * with `homebridge: false`.
   */
  pluginDir?: string;
  /** How long to wait for the UI to listen (default 30 s; it takes about 3 s on the test machine). */
  startTimeoutMs?: number;
}

export interface ConfigUi {
  /** `http://127.0.0.1:<port>`, the UI's address. */
  readonly url: string;
  readonly port: number;
  readonly version: string;
  readonly root: string;
  readonly storagePath: string;
  readonly configPath: string;
  /** The folder given to both Homebridge and the UI as `-P`. */
  readonly pluginPath: string;
  readonly admin: { username: string; password: string };
  /** The Homebridge child (undefined with `homebridge: false`). */
  readonly homebridge: HomebridgeProcess | undefined;
  /** The UI's log lines so far (colours stripped). */
  uiLog(): string[];
  /** config.json exactly as on disk. */
  readConfigText(): string;
  readConfig(): HomebridgeConfigFile;
  /** Every `"platform": "WebRTCCameras"` block in config.json. */
  pluginBlocks(): PlatformBlock[];
  /** The first-run set-up through the UI's REST endpoints (what `setup: 'api'` does). */
  createAdminWithApi(): Promise<void>;
  /** A bearer token for the UI's REST API, signed in as the admin. */
  token(): Promise<string>;
  /** A request to the UI's REST API (`/api/...`) as the admin; throws on a non-2xx answer. */
  api<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  /**
   * The first-run set-up as a person does it, in the page: Get Started, user name and password,
   * Continue, Continue. Leaves the page signed in.
   */
  completeSetupInBrowser(page: Page): Promise<void>;
  /** Signs the page in through the UI's log-in form (after the set-up). */
  signIn(page: Page): Promise<void>;
  /**
   * Plugins → the plugin's ⋮ menu → Plugin Config, like a person. Resolves with the settings
   * dialog once it shows either the schema form or the plugin's custom page.
   */
  openPluginSettings(page: Page): Promise<Locator>;
  /**
   * Opens the settings dialog and makes sure it shows the schema form (clicking through the custom
   * UI's button to it when the plugin has `customUi`). Resolves with the dialog. Behind a custom UI,
   * config-ui-x 5.28 shows the form only when config.json already has a block for the plugin (a
   * custom UI makes one with `homebridge.updatePluginConfig()`).
   */
  openSchemaForm(page: Page): Promise<Locator>;
  /**
   * Clicks the dialog's Save, waits for the UI's answer (sent once config.json is written) and
   * dismisses the UI's follow-up dialog (child bridge, restart), changing nothing.
   */
  saveSettings(page: Page, dialog: Locator): Promise<void>;
  /**
   * Waits until the open settings form has handed its data to the UI with `check` true of it.
   * A tick in the form reaches the data Save posts only through the form's change event, and a
   * Save clicked before it posts the form without the tick: a person never clicks that fast, a
   * test on a busy machine did. This asks the UI itself (the plugin page's
   * `homebridge.getPluginConfig()`, answered from the very blocks Save posts). Watching the
   * `configChanged` message instead was not enough: config-ui-x debounces it (250 ms) and drops
   * its first emission, so a form typed without a 250 ms pause never sent one. Needs the form
   * opened through the custom page (`openSchemaForm`).
   */
  waitForFormData(page: Page, check: (block: PlatformBlock) => boolean, what: string): Promise<void>;
  /** Stops the UI and Homebridge and removes the temporary folder. */
  stop(): Promise<void>;
}

export interface HomebridgeConfigFile {
  bridge: Record<string, unknown>;
  accessories?: unknown[];
  platforms?: PlatformBlock[];
  [key: string]: unknown;
}

export async function startConfigUi(options: ConfigUiOptions = {}): Promise<ConfigUi> {
  const root = mkdtempSync(join(tmpdir(), 'wrc-config-ui-'));
  const storagePath = join(root, 'storage');
  const pluginPath = join(root, 'node_modules');
  const configPath = join(storagePath, 'config.json');
  mkdirSync(storagePath, { recursive: true });
  mkdirSync(pluginPath, { recursive: true });
  // As `npm install` would lay them out; the UI lists the plugin from here and reads its schema.
  symlinkSync(options.pluginDir ?? PLUGIN_DIR, join(pluginPath, PLUGIN_NAME), 'dir');
  symlinkSync(CONFIG_UI_DIR, join(pluginPath, 'homebridge-config-ui-x'), 'dir');

  const admin = options.admin ?? { username: 'admin', password: `pw-${randomBytes(9).toString('base64url')}` };
  const [uiPort, bridgePort] = (await getFreePorts(2)) as [number, number];
  const config: HomebridgeConfigFile = {
    bridge: {
      name: 'WebRTC UI Test Bridge',
      username: randomBridgeUsername(),
      port: bridgePort,
      pin: DEFAULT_PIN,
      // Homebridge's mDNS advertiser stays on loopback (field notes).
      bind: ['127.0.0.1'],
    },
    accessories: [],
    platforms: [
      { platform: 'config', name: 'Config', port: uiPort, host: LOOPBACK, ...options.uiConfig },
      ...(options.platform ? [options.platform] : []),
    ],
  };
  writeFileSync(configPath, `${JSON.stringify(config, null, 4)}\n`);

  const lines: string[] = [];
  const waiters = new Set<() => void>();
  const env: NodeJS.ProcessEnv = { ...process.env, UIX_STRICT_PLUGIN_RESOLUTION: '1' };
  // The test runner's markers would make a child Node think it is a test file.
  delete env['NODE_TEST_CONTEXT'];
  delete env['NODE_OPTIONS'];
  const child: ChildProcess = spawn(process.execPath, [STANDALONE, '-U', storagePath, '-P', pluginPath], {
    cwd: storagePath,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const exited = new Promise<void>((done) => {
    child.once('exit', () => {
      for (const waiter of [...waiters]) waiter();
      done();
    });
    child.once('error', (error) => {
      lines.push(`config-ui helper: could not start the UI: ${error.message}`);
      done();
    });
  });
  for (const stream of [child.stdout, child.stderr]) {
    let partial = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      const parts = (partial + chunk).split(/\r?\n/);
      partial = parts.pop() ?? '';
      for (const part of parts) lines.push(part.replace(ANSI_COLOUR, ''));
      for (const waiter of [...waiters]) waiter();
    });
  }
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  const killUi = async (): Promise<void> => {
    if (child.pid && running()) {
      signalGroup(child.pid, 'SIGTERM');
      const timer = setTimeout(() => child.pid && signalGroup(child.pid, 'SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
  };

  let homebridge: HomebridgeProcess | undefined;
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      unregister();
      await Promise.all([killUi(), homebridge?.stop()]);
      rmSync(root, { recursive: true, force: true });
    })());
  const unregister = registerCleanup(stop);
  process.once('exit', () => {
    if (child.pid && running()) signalGroup(child.pid, 'SIGKILL');
  });

  const waitForUiLog = (pattern: RegExp, timeoutMs: number): Promise<string> =>
    new Promise((resolve, reject) => {
      const finish = (fn: () => void): void => {
        waiters.delete(check);
        clearTimeout(timer);
        fn();
      };
      const check = (): void => {
        const found = lines.find((line) => pattern.test(line));
        if (found !== undefined) finish(() => resolve(found));
        else if (!running()) finish(() => reject(new Error(`The Homebridge UI exited before logging ${pattern}.\n${lines.slice(-40).join('\n')}`)));
      };
      const timer = setTimeout(
        () => finish(() => reject(new Error(`The Homebridge UI did not log ${pattern} within ${timeoutMs} ms.\n${lines.slice(-40).join('\n')}`))),
        timeoutMs,
      );
      waiters.add(check);
      check();
    });

  let port = 0;
  try {
    const startHomebridge = async (): Promise<void> => {
      if (options.homebridge === false) return;
      homebridge = new HomebridgeProcess({ storagePath, pluginPath, writeConfig: false });
      await homebridge.start();
    };
    const waitForUi = async (): Promise<void> => {
      const line = await waitForUiLog(LISTENING_LINE, options.startTimeoutMs ?? 30_000);
      port = Number(LISTENING_LINE.exec(line)?.[3]);
      // The UI logs "is listening" just before it calls listen().
      await waitForPort(port, { timeoutMs: 10_000 });
    };
    await Promise.all([waitForUi(), startHomebridge()]);
  } catch (error) {
    await stop();
    throw error;
  }
  const version = lines.map((line) => LISTENING_LINE.exec(line)?.[1]).find(Boolean) ?? '';
  const url = `http://${LOOPBACK}:${port}`;

  const request = async <T>(method: string, path: string, body: unknown, bearer: string | undefined): Promise<T> => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status} ${text.slice(0, 300)}`);
    return (text ? JSON.parse(text) : undefined) as T;
  };

  let cachedToken: string | undefined;
  const token = async (): Promise<string> => {
    cachedToken ??= (await request<{ access_token: string }>('POST', '/api/auth/login', admin, undefined)).access_token;
    return cachedToken;
  };

  const readConfigText = (): string => readFileSync(configPath, 'utf8');
  const readConfig = (): HomebridgeConfigFile => JSON.parse(readConfigText()) as HomebridgeConfigFile;

  const ui: ConfigUi = {
    url,
    port,
    version,
    root,
    storagePath,
    configPath,
    pluginPath,
    admin,
    homebridge,
    uiLog: () => [...lines],
    readConfigText,
    readConfig,
    pluginBlocks: () => (readConfig().platforms ?? []).filter((block) => block['platform'] === PLUGIN_ALIAS),
    createAdminWithApi: async () => {
      const setup = await request<{ access_token: string }>('GET', '/api/setup-wizard/get-setup-wizard-token', undefined, undefined);
      await request('POST', '/api/setup-wizard/create-first-user', { name: admin.username, username: admin.username, password: admin.password, admin: true }, setup.access_token);
    },
    token,
    api: async <T>(method: string, path: string, body?: unknown) => request<T>(method, path, body, await token()),
    completeSetupInBrowser: async (page) => {
      await page.goto(`${url}/`);
      await page.getByRole('button', { name: 'Get Started' }).click();
      await page.fill('#form-username', admin.username);
      await page.fill('#form-pass', admin.password);
      await page.fill('#form-pass-confirm', admin.password);
      await page.getByRole('button', { name: 'Continue' }).click();
      await page.getByText('The setup procedure is complete').waitFor();
      await page.getByRole('button', { name: 'Continue' }).or(page.getByRole('link', { name: 'Continue' })).first().click();
      await page.waitForURL((u) => !u.pathname.startsWith('/setup'));
    },
    signIn: async (page) => {
      await page.goto(`${url}/login`);
      await page.fill('#form-username', admin.username);
      await page.fill('#form-pass', admin.password);
      await page.locator('#submit-button').click();
      await page.waitForURL((u) => !u.pathname.startsWith('/login'));
    },
    openPluginSettings: async (page) => openPluginSettings(page, url),
    openSchemaForm: async (page) => {
      const dialog = await openPluginSettings(page, url);
      const form = dialog.locator('form.json-schema-form');
      // A custom UI (config.schema.json "customUi": true) shows the plugin's page in an iframe
      // first; its button to the full settings form calls homebridge.showSchemaForm().
      // The loser of the race times out later; its rejection is expected and dropped.
      const shown = await Promise.race([
        form.first().waitFor().then(() => 'form' as const, () => 'none' as const),
        dialog.locator('iframe').first().waitFor().then(() => 'custom' as const, () => 'none' as const),
      ]);
      if (shown === 'custom') {
        // The plugin's page must have loaded (the iframe starts as about:blank) before the watch goes in.
        const button = dialog.frameLocator('iframe').first().getByRole('button', { name: SCHEMA_FORM_BUTTON }).first();
        await button.waitFor();
        if ((await form.count()) === 0) await button.click();
      }
      await form.first().waitFor();
      return dialog;
    },
    saveSettings: async (page, dialog) => {
      const saved = page.waitForResponse((r) => r.url().includes(`/api/config-editor/plugin/${PLUGIN_NAME}`) && r.request().method() === 'POST');
      await dialog.getByRole('button', { name: 'Save', exact: true }).click();
      // The UI answers after config.json is written.
      const response = await saved;
      if (!response.ok()) throw new Error(`saving the plugin settings failed: HTTP ${response.status()} ${await response.text()}`);
      // (`dialog` itself would now find the next dialog: wait for the form to go.)
      await page.locator('json-schema-form').first().waitFor({ state: 'detached' });
      // Then the UI offers a follow-up: a child bridge after the first save, a restart after the
      // others. Dismiss it without accepting, so the next step starts from the plugin list.
      const next = page.locator('.modal-content');
      const shown = await next.first().waitFor({ timeout: 10_000 }).then(() => true, () => false);
      if (shown) {
        // The restart prompt has a Close button; the child bridge offer closes on Escape.
        const close = next.first().getByRole('button', { name: 'Close', exact: true });
        if ((await close.count()) > 0) await close.first().click();
        else await page.keyboard.press('Escape');
        await next.first().waitFor({ state: 'detached', timeout: 10_000 });
      }
    },
    waitForFormData: async (page, check, what) => {
      const frame = await pluginFrame(page.locator('.modal-content').last());
      let last: unknown;
      await waitFor(
        async () => {
          last = await frame.evaluate(() => (window as unknown as { homebridge: { getPluginConfig(): Promise<unknown> } }).homebridge.getPluginConfig());
          const block = Array.isArray(last) ? (last[0] as PlatformBlock | undefined) : undefined;
          return block !== undefined && check(block);
        },
        10_000,
        `the settings form's data to have ${what}`,
        () => JSON.stringify(last),
      );
    },
    stop,
  };
  if ((options.setup ?? 'api') === 'api') await ui.createAdminWithApi();
  return ui;
}

/** The plugin's own page inside the settings dialog (its iframe). */
async function pluginFrame(dialog: Locator): Promise<Frame> {
  const frame = await (await dialog.locator('iframe').first().elementHandle())?.contentFrame();
  if (!frame) throw new Error("the settings dialog has no plugin page (iframe)");
  return frame;
}

/** Plugins page → the plugin's card → its ⋮ menu → Plugin Config; resolves with the dialog. */
async function openPluginSettings(page: Page, url: string): Promise<Locator> {
  await page.goto(`${url}/plugins`);
  const card = page.locator('.card').filter({ hasText: 'WebRTC Cameras' }).first();
  await card.waitFor();
  await card.getByRole('button', { name: 'Plugin Actions' }).click();
  await card.locator('.dropdown-item').filter({ hasText: 'Plugin Config' }).click();
  const dialog = page.locator('.modal-content').last();
  await dialog.waitFor();
  return dialog;
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}
