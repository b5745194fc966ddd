import { X509Certificate } from 'node:crypto';
import { createRestreamServer, type RestreamServer } from '../restream/server.js';
import { isLoopback } from '../util/address.js';
import { createAccessControl, createClientAddressOf, createHttpsRedirect, loadTlsCredentials, type AccessControl } from '../web/auth/index.js';
import { TranscodedVariants } from '../transcode/variants.js';
import { createWebServer, type WebServer } from '../web/server.js';
import type { CameraRegistry, ClientIceServer, WebRoute } from '../web/types.js';
import { renderMetrics } from '../web/metrics.js';
import { canWatch } from '../access/principal.js';
import type { IceSettings } from '../webrtc/ice-config.js';
import { createSignallingHandler } from '../webrtc/signalling.js';
import { nativeFanout } from '../rtp/native-fanout.js';
import { nativeReceive } from '../rtp/native-receive-check.js';
import { ViewerLimiter, type ViewerLimitSettings } from '../webrtc/viewer-limits.js';
import { createWhepHandler } from '../webrtc/whep.js';
import type { PluginConfig, WebConfig } from '../config/types.js';
import type { RegisteredCamera, RuntimeContext, SharedServices } from './types.js';
import { createDiscoveryService } from './discovery-service.js';
import { SnapshotRegistry } from '../snapshots/snapshot-service.js';
import { pruneSavedSnapshots } from '../snapshots/snapshot-store.js';
import { adminRoutes } from '../admin/admin-routes.js';
import { createLocalAdmin, type LocalAdmin } from '../admin/local-admin.js';
import type { Authorize } from '../web/types.js';
import type { PeerLimitSettings } from '../web/auth/peer-guard.js';
import { EventStream } from '../web/event-stream.js';
import { ptzMoverEvent } from '../web/ptz-types.js';
import { WEB_TRIGGER_KINDS, webTriggerPath, webTriggerRoutes, type WebTriggerKind } from '../web/web-trigger.js';
import { TriggerTokens, wantsWebTrigger } from './trigger-tokens.js';
import { ScaleOut } from '../scaleout/scale-out.js';

export type { RegisteredCamera, SharedServices } from './types.js';

/** Our ICE settings from the validated config. */
export function iceSettingsFrom(config: PluginConfig): IceSettings {
  const servers = [
    ...config.ice.stunServers.map((urls) => ({ urls })),
    ...config.ice.turnServers.map((t) => ({ urls: t.urls, ...(t.username ? { username: t.username } : {}), ...(t.credential ? { credential: t.credential } : {}) })),
  ];
  return {
    iceServers: servers,
    ...(config.ice.udpPortMin !== undefined && config.ice.udpPortMax !== undefined ? { portRange: [config.ice.udpPortMin, config.ice.udpPortMax] as [number, number] } : {}),
    ...(config.ice.announcedAddresses.length ? { announcedAddresses: config.ice.announcedAddresses } : {}),
    // A web server bound to loopback (the demo) has viewers on this machine only: its ICE sockets
    // bind to loopback too, so no UDP port opens on the LAN and no LAN address is offered.
    ...(isLoopback(config.web.bind) ? loopbackIce(config.web.bind) : {}),
    useTcp: config.ice.iceTcp,
  };
}

function loopbackIce(bind: string): Pick<IceSettings, 'additionalHostAddresses' | 'interfaceAddresses' | 'useIpv6' | 'onlyHostAddresses'> {
  if (bind === '::1') {
    return { additionalHostAddresses: ['::1', '127.0.0.1'], interfaceAddresses: { udp4: '127.0.0.1', udp6: '::1' }, onlyHostAddresses: ['::1', '127.0.0.1'] };
  }
  const address = bind === 'localhost' ? '127.0.0.1' : bind;
  return { additionalHostAddresses: [address], interfaceAddresses: { udp4: address }, useIpv6: false, onlyHostAddresses: [address] };
}

export function createSharedServices(context: RuntimeContext): SharedServices {
  const { config, log } = context;
  const cameras = new Map<string, RegisteredCamera>();
  let restream: RestreamServer | undefined;
  // One VP8 encoder per camera, on first use, for browsers without H.264 and for H.265 cameras.
  const variants = new TranscodedVariants({
    ffmpeg: context.ffmpeg,
    restreamUrl: (id) => {
      if (!restream) throw new Error('the re-stream server is not running');
      return restream.issueUrl(id);
    },
    log,
    debug: config.ffmpeg.debug,
  });
  const registry: CameraRegistry = {
    get: (id) => cameras.get(id)?.source,
    list: () => [...cameras.values()].map((c) => c.source),
    transcoded: (id, codec = 'VP8') => {
      const camera = cameras.get(id);
      if (!camera || !restream) return undefined;
      return variants.variantFor(codec, { id, name: camera.config.name, source: camera.source });
    },
    withOpusSound: (id) => {
      const camera = cameras.get(id);
      return camera ? variants.withOpusSound({ id, name: camera.config.name, source: camera.source }) : undefined;
    },
    talk: (id) => cameras.get(id)?.talk,
  };
  const limits = new ViewerLimiter(viewerLimitSettings(config));
  const ice = iceSettingsFrom(config);
  // Every camera registers its snapshot service here (camera-runtime.ts); the web server reads it.
  const snapshots = new SnapshotRegistry();
  let web: WebServer | undefined;
  let access: AccessControl | undefined;
  let localAdmin: LocalAdmin | undefined;
  let closeWhep: (() => Promise<void>) | undefined;
  let redirect: { close(): Promise<void> } | undefined;
  let watchUrl: string | undefined;
  const discovery = createDiscoveryService(config, context.storagePath, log);
  // Issue 18: the Janus gateways that serve scaled-out cameras' viewers (none configured: undefined).
  const scaleOut = ScaleOut.fromConfig(config.scaleOut, { storagePath: context.storagePath, platformName: config.name, logger: log });
  // Doorbells (issue 17): the page's event stream. Web triggers (doorbell presses, motion): one store
  // of secrets per kind, and the routes.
  let events: EventStream | undefined;
  const triggerTokens = Object.fromEntries(WEB_TRIGGER_KINDS.map((kind) => [kind, new TriggerTokens(context.storagePath, kind)])) as Record<WebTriggerKind, TriggerTokens>;
  const triggerRoutes = webTriggerRoutes({ trigger: (kind, id) => cameras.get(id)?.triggers?.[kind] });
  // Prometheus text for the cameras the caller may watch: a share-link token for all cameras works
  // as a scraper's bearer token.
  const metricsRoute: WebRoute = {
    method: 'GET',
    path: '/metrics',
    auth: 'viewer',
    handle: (ctx) => {
      const visible = [...cameras.values()].filter((c) => ctx.principal && canWatch(ctx.principal, c.config.id));
      ctx.res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8', 'Cache-Control': 'no-store' });
      ctx.res.end(renderMetrics(visible.map((c) => {
        const scaled = scaleOut?.cameraStats(c.config.id);
        return {
        stats: c.source.stats(),
        viewers: limits.count(c.config.id),
        transcoders: variants.running(c.config.id),
        transcoderStepsDown: variants.reducedSteps(c.config.id),
        ...(scaled ? { scaleOut: scaled } : {}),
        };
      })));
    },
  };

  return {
    snapshots,
    get watchUrl() {
      return watchUrl;
    },
    async triggerToken(kind, cameraId) {
      const token = await triggerTokens[kind].tokenFor(cameraId);
      // From now on no log line can carry it (the redacting logger reads this set at every line).
      context.secrets.add(token.token);
      return token;
    },
    publishDoorbell(event) {
      events?.publish(event);
    },
    publishPtzMover(cameraId, moverId) {
      const at = Date.now();
      events?.publishFor(cameraId, (principal) => ptzMoverEvent(cameraId, moverId, principal, at));
    },
    async start() {
      // Before any camera asks for its token (one queue per kind): a camera deleted, or its trigger
      // turned off, loses its secret, so adding it again later makes a new address.
      for (const kind of WEB_TRIGGER_KINDS) {
        void triggerTokens[kind].prune(config.cameras.filter((c) => wantsWebTrigger(c, kind)).map((c) => c.id)).then((removed) => {
          if (removed > 0) log.debug(`${kind} web trigger secrets of ${removed} camera(s) no longer configured with one were removed.`);
        }, (error: unknown) => {
          log.warn(`The ${kind} web trigger secrets could not be tidied: ${error instanceof Error ? error.message : String(error)}`);
        });
      }
      restream = await createRestreamServer({
        getSource: (id) => cameras.get(id)?.source,
        port: config.restream.port,
        lanAccess: config.restream.lanAccess,
        // Loopback is not trusted either: the plugin's own ffmpeg processes get single-use tokens
        // (restreamUrl), and anything else (an NVR, VLC, another local user) the configured
        // credentials, which are then required whether or not lanAccess is on.
        requireAuthOnLoopback: true,
        ...(config.restream.username && config.restream.password
          ? { credentials: { username: config.restream.username, password: config.restream.password } } : {}),
        log,
      });
      log.debug(`Loopback re-stream on rtsp://${restream.host}:${restream.port}/<camera-id>`);
      const tls = await loadTlsCredentials(config.web.tls, { storagePath: context.storagePath, log });
      // Validated with the config: a bad entry made the whole web section fall back to defaults.
      const clientAddress = createClientAddressOf(config.web.trustedProxies);
      // The demo (no camera configured, page on loopback) opens for anyone on this machine; everything
      // else needs a viewer account or a share link.
      const demoOnLoopback = config.cameras.every((c) => c.source.kind === 'demo') && isLoopback(config.web.bind);
      access = await createAccessControl({
        viewers: config.viewers,
        storagePath: context.storagePath,
        log,
        tls: tls !== undefined,
        ...(config.web.publicUrl ? { publicUrl: config.web.publicUrl } : {}),
        defaultLinkExpiryMs: config.shareLinks.defaultExpiryMs,
        cameraIds: () => cameras.keys(),
        allowAnonymousLoopback: demoOnLoopback,
        clientAddress,
        peers: peerLimits(config.web),
      });
      // The Homebridge UI's custom page reaches the plugin through a secret in the storage folder
      // (src/admin): its admin token and preview tokens are judged first, everything else by access.
      const admin = await createLocalAdmin({ storagePath: context.storagePath });
      localAdmin = admin;
      const accessControl = access;
      const authorize: Authorize = (req) => {
        const decided = admin.authorize(req);
        return decided === 'not-mine' ? accessControl.authorize(req) : decided;
      };
      const whep = createWhepHandler({ registry, limits, ice, logger: log });
      const eventStream = new EventStream();
      events = eventStream;
      closeWhep = () => whep.closeAll();
      web = createWebServer({
        port: config.web.port,
        host: config.web.bind,
        ...(tls ? { tls: { cert: tls.cert, key: tls.key } } : {}),
        registry,
        allowedOrigins: browserOrigins(config.web),
        bearerOrigins: (origin) => admin.allowsOrigin(origin),
        clientAddress,
        trustedProxies: config.web.trustedProxies,
        authorize,
        loginPath: access.loginPath,
        routes: [...access.routes, discovery.route, metricsRoute, eventStream.route, ...triggerRoutes, ...adminRoutes({
          registry,
          localAdmin: admin,
          cameraExtras: (id) => {
            const camera = cameras.get(id);
            return camera ? { name: camera.config.name, viewers: limits.count(id) } : undefined;
          },
          cameraConfig: (id) => cameras.get(id)?.config,
          homekitStreams: (id) => cameras.get(id)?.homekitStreams?.() ?? 0,
          recording: (id) => cameras.get(id)?.recording?.(),
          transcoders: (id) => variants.encoders(id),
          ...(scaleOut ? {
            scaleOut: {
              camera: (id: string) => {
                const scaled = scaleOut.cameraStats(id);
                return scaled ? { gateways: scaled.gateways, viewers: scaled.viewers } : undefined;
              },
              gateways: () => scaleOut.summaries(),
            },
          } : {}),
          secrets: () => [...context.secrets, ...accessControl.secrets()],
          ffmpegPath: context.ffmpeg?.path,
          discoverNow: () => discovery.searchNow(),
          webTriggers: () => [...cameras.values()].flatMap((c) => WEB_TRIGGER_KINDS.flatMap((kind) => {
            const trigger = c.triggers?.[kind];
            return trigger ? [{ camera: c.config.id, name: c.config.name, kind, path: webTriggerPath(kind, c.config.id, trigger.token) }] : [];
          })),
        })],
        secrets: () => [...context.secrets, ...access!.secrets()],
        signalling: access.guardSignalling(createSignallingHandler({ registry, limits, ice, logger: log, ...(scaleOut ? { relays: scaleOut } : {}) })),
        whep: access.guardWhep(whep),
        snapshots,
        cameraExtras: (id) => {
          const camera = cameras.get(id);
          return camera ? { name: camera.config.name, viewers: limits.count(id) } : undefined;
        },
        clientIceServers: (): ClientIceServer[] => ice.iceServers ?? [],
        ptz: (id) => cameras.get(id)?.ptz?.(),
        log,
      });
      const fanout = nativeFanout();
      if (fanout.loaded) log.debug(`Viewer packets leave through the native fan-out (${fanout.path})`);
      else log.info(`Viewer packets leave through the JavaScript fan-out (the native one: ${fanout.reason}); it works the same at a higher CPU cost per viewer`);
      if (fanout.loaded) {
        void nativeReceive().then((receive) => {
          if (!receive.loaded) log.warn(`Cameras' RTP over UDP is read with Node's dgram, at a higher CPU cost: the native addon loaded, but ${receive.reason}`);
        });
      }
      const server = web;
      access.onRevoke((predicate, reason) => {
        eventStream.disconnect(predicate);
        return server.disconnect(predicate, reason);
      });
      const { port, url } = await web.listen();
      if (tls && config.web.tls.redirectHttpPort) {
        const redirector = createHttpsRedirect({
          port: config.web.tls.redirectHttpPort, host: config.web.bind, httpsPort: port, log,
          ...(config.web.publicUrl !== undefined ? { publicUrl: config.web.publicUrl } : {}),
        });
        await redirector.listen();
        redirect = redirector;
      }
      await admin.publish(port, tls !== undefined, tls ? new X509Certificate(tls.cert).fingerprint256 : undefined).catch((error: unknown) => {
        log.warn(`The Homebridge UI page cannot reach the plugin: admin.json could not be written (${error instanceof Error ? error.message : String(error)}).`);
      });
      watchUrl = config.web.publicUrl ?? url;
      log.info(`Watch page: ${watchUrl}`);
      if (demoOnLoopback) log.info('The demo page is open to this machine without signing in.');
      else if (access.accountCount === 0) {
        log.warn('No viewer account is configured, so nobody can sign in to the watch page yet: add one under "Viewers" in the plugin settings.');
      }
      discovery.start();
      scaleOut?.start();
      // In the background: a removed camera's saved picture is not served anyway (only configured
      // cameras are looked up); this takes it off the disk too.
      void pruneSavedSnapshots(context.storagePath, config.cameras.map((c) => c.id), log);
    },
    async stop() {
      discovery.stop();
      // Its mountpoints go first, while the cameras still run.
      await scaleOut?.stop();
      events?.close();
      events = undefined;
      // The transcoders read the re-stream: they stop first.
      await variants.closeAll();
      await Promise.allSettled([web?.close(), restream?.close(), redirect?.close()]);
      await Promise.allSettled([closeWhep?.(), access?.stop(), localAdmin?.close()]);
      localAdmin = undefined;
      web = undefined;
      restream = undefined;
      access = undefined;
      redirect = undefined;
    },
    addCamera(camera) {
      cameras.set(camera.config.id, camera);
      if (scaleOut && (camera.config.scaleOut || config.scaleOut.allCameras)) {
        const id = camera.config.id;
        scaleOut.publish({
          id,
          name: camera.config.name,
          source: camera.source,
          // What browsers cannot take goes to the gateways as the variant they can: H.265 as the
          // H.264 variant, AAC sound as Opus (one encoder each, shared with the plugin's own viewers).
          feed: (tracks) => {
            if (tracks.some((t) => t.kind === 'video' && t.codec === 'H265')) return registry.transcoded?.(id, 'H264');
            if (tracks.some((t) => t.kind === 'audio' && t.codec === 'AAC')) return registry.withOpusSound?.(id);
            return undefined;
          },
        });
      }
    },
    removeCamera(id) {
      cameras.delete(id);
      scaleOut?.unpublish(id);
      void variants.remove(id);
    },
    restreamUrl(id) {
      if (!restream) throw new Error('the re-stream server is not running');
      return restream.issueUrl(id);
    },
  };
}

/** What the one viewer limiter enforces, as configured: each camera's maxViewers, and web.maxConnectingViews as the pending budget. */
export function viewerLimitSettings(config: Pick<PluginConfig, 'cameras' | 'web'>): ViewerLimitSettings {
  return {
    perCamera: Object.fromEntries(config.cameras.map((c) => [c.id, c.maxViewers])),
    maxPendingPerOwner: config.web.maxConnectingViews,
  };
}

/** The viewer caps access control enforces per account or share link and per client address, as configured. */
export function peerLimits(web: Pick<WebConfig, 'maxViewsPerUser' | 'maxViewsPerAddress'>): Pick<PeerLimitSettings, 'maxPeersPerPrincipal' | 'maxPeersPerAddress'> {
  return { maxPeersPerPrincipal: web.maxViewsPerUser, maxPeersPerAddress: web.maxViewsPerAddress };
}

/**
 * The origins whose pages may use the API, WHEP and the WebSocket besides the server's own: the
 * configured ones, and the public address, because behind a TLS-terminating reverse proxy the
 * browser's Origin (https://cameras.example.com) is not what this server sees as its own.
 */
export function browserOrigins(web: Pick<WebConfig, 'allowedOrigins' | 'publicUrl'>): string[] {
  const origins = new Set(web.allowedOrigins);
  if (web.publicUrl) {
    try {
      origins.add(new URL(web.publicUrl).origin);
    } catch {
      // Validation refused a malformed publicUrl already.
    }
  }
  return [...origins];
}
