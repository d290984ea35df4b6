// The livesim API, defined once. TypeScript types (Static<>), runtime validation (compiled checkers in
// validate.ts) and the CRDs in crds/ (hack/gen-crds.ts) all come from these schemas.
//
// Schemas stay "structural" in the Kubernetes sense: no anyOf/oneOf of differently-shaped objects.
// Where a field's shape depends on a kind (model components), the schema holds the union of the
// fields and MODEL_KINDS says which belong to which kind; validate.ts and the CRD's CEL rules both
// read that table.
import Type, { type Static } from 'typebox'
import { BANDWIDTH_PATTERN, DURATION_PATTERN, SIZE_PATTERN } from './units.ts'
import { IMAGE_REFERENCE_MAX, IMAGE_REFERENCE_PATTERN } from './image.ts'

export const GROUP = 'livesim.dev'
export const VERSION = 'v1alpha1'
export const API_VERSION = `${GROUP}/${VERSION}`

export const LIMITS = {
  clusterNameMax: 40,
  hostNameMax: 20,
  componentNameMax: 30,
  replicasMax: 10_000,
  hostsTotalMax: 10_000,
  /** Host groups in spec.hosts (hosts come from their replicas): also what bounds the CRD's CEL rule cost. */
  hostGroupsMax: 1000,
  componentsPerHostMax: 64,
  linksMax: 10000,
  callsMax: 32,
} as const

const DNS_LABEL = '^[a-z]([-a-z0-9]*[a-z0-9])?$'

const Duration = (description: string) =>
  Type.String({ pattern: DURATION_PATTERN, description: `${description} A duration with a unit: 250us, 1.5ms, 2s.` })

const Bandwidth = (description: string) =>
  Type.String({ pattern: BANDWIDTH_PATTERN, description: `${description} Bits per second with a unit: 100Mbps, 10Gbps.` })

const Size = (description: string) =>
  Type.Unsafe<number | string>({
    anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string', pattern: SIZE_PATTERN }],
    'x-kubernetes-int-or-string': true,
    description: `${description} Bytes: an integer, or a string with a unit (512B, 4KiB, 1MB).`,
  })

const Name = (max: number, description: string) =>
  Type.String({ pattern: DNS_LABEL, minLength: 1, maxLength: max, description })

/** A UID or GID (integer), or a user or group name (int-or-string, as Kubernetes' Size-like fields). */
const UserOrGroup = (description: string) =>
  Type.Unsafe<number | string>({
    anyOf: [
      { type: 'integer', minimum: 0, maximum: 2147483647 },
      { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_.-]*[$]?$', maxLength: 32 },
    ],
    'x-kubernetes-int-or-string': true,
    description,
  })

function Enum<const T extends readonly string[]>(values: T, description: string) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], description })
}

const Closed = { additionalProperties: false } as const

// ---------------------------------------------------------------------------------------------
// Network

export const LinkProperties = {
  latency: Type.Optional(Duration('One-way propagation latency; the smallest one is the lookahead.')),
  bandwidth: Type.Optional(Bandwidth('Serialisation rate of the link.')),
  loss: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'Probability that a message is lost, from 0 to 1.' })),
  queueLimit: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'Messages that may wait for the link before further ones are dropped.' }),
  ),
}

export const LinkSpec = Type.Object(LinkProperties, { ...Closed, description: 'Properties of a network link.' })

export const LinkOverride = Type.Object(
  {
    from: Type.String({ minLength: 1, maxLength: 64, description: 'A host group (every replica) or one replica, e.g. web or web-1.' }),
    to: Type.String({ minLength: 1, maxLength: 64, description: 'A host group or one replica.' }),
    bidirectional: Type.Optional(Type.Boolean({ description: 'Also apply to to→from (default true).' })),
    ...LinkProperties,
  },
  { ...Closed, description: 'Link properties for the pairs between two host groups or replicas; unset fields come from network.default.' },
)

export const NetworkSpec = Type.Object(
  {
    default: Type.Optional(LinkSpec),
    links: Type.Optional(Type.Array(LinkOverride, { maxItems: LIMITS.linksMax })),
  },
  { ...Closed, description: 'The simulated network: a default link between every pair of hosts and per-pair overrides.' },
)

// ---------------------------------------------------------------------------------------------
// Components

export const Distributions = ['Constant', 'Exponential', 'LogNormal'] as const

export const ServiceTime = Type.Object(
  {
    distribution: Enum(Distributions, 'Distribution of the service time.'),
    mean: Duration('Mean service time.'),
    sigma: Type.Optional(Type.Number({ minimum: 0, maximum: 10, description: 'LogNormal only: standard deviation of the underlying normal.' })),
  },
  Closed,
)

/** Protocols a modelled component can speak to a live one. */
export const RedisRequests = Type.Object(
  {
    setRatio: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'Fraction of requests that are SET (default 0.5); the rest are GET.' })),
    keys: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000_000, description: 'Keys drawn uniformly from key:0 … key:<keys-1> (default 10000).' })),
    valueSize: Type.Optional(Size('Size of a SET value (default 64B).')),
  },
  { ...Closed, description: 'Speak Redis (RESP GET/SET) to a live component; requestSize and responseSize are then the real command and reply sizes.' },
)

export const HTTP_METHODS = ['GET', 'POST'] as const
export const HTTP_PATH_PATTERN = '^/[!-~]*$'
export const HTTP_HEADER_NAME_PATTERN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
export const HTTP_HEADER_VALUE_PATTERN = '^[^\\r\\n\\x00]*$'
/** Headers livesim writes itself (framing and keepAlive): not allowed in headers. */
export const HTTP_MANAGED_HEADERS = ['Content-Length', 'Transfer-Encoding', 'Connection'] as const

const HttpPath = (description: string) => Type.String({ pattern: HTTP_PATH_PATTERN, minLength: 1, maxLength: 2048, description })

export const HttpRequests = Type.Object(
  {
    method: Type.Optional(Enum(HTTP_METHODS, 'Request method (default GET).')),
    path: Type.Optional(HttpPath('Request target: a path with an optional query, e.g. /index.html?lang=en (default /).')),
    paths: Type.Optional(
      Type.Array(HttpPath('A request target.'), { minItems: 1, maxItems: 1024, description: 'Several request targets instead of path: each request takes one at random (uniformly, from the seeded stream).' }),
    ),
    headers: Type.Optional(
      Type.Array(
        Type.Object(
          {
            name: Type.String({ pattern: HTTP_HEADER_NAME_PATTERN, minLength: 1, maxLength: 256, description: 'Header name (an HTTP token).' }),
            value: Type.String({ pattern: HTTP_HEADER_VALUE_PATTERN, maxLength: 8192, description: 'Header value.' }),
          },
          Closed,
        ),
        { maxItems: 64, description: 'Request headers, in order. Host defaults to the target replica (web-0, or web-0:8080 off port 80), User-Agent to livesim; Content-Length, Transfer-Encoding and Connection are livesim\'s (bodySize, keepAlive).' },
      ),
    ),
    bodySize: Type.Optional(Size('POST: size of the request body (default 0).')),
    keepAlive: Type.Optional(Type.Boolean({ description: 'Keep connections open between requests (default true); false sends Connection: close and opens a connection per request.' })),
  },
  {
    ...Closed,
    description:
      'Speak HTTP/1.1 to a live component: each closed-loop user keeps its own connection, an open loop and a Server\'s calls use a connection per request in flight. A 5xx reply is an error; results count status codes and latency per status class. requestSize and responseSize are then the real sizes.',
  },
)

export const Call = Type.Object(
  {
    target: Type.String({ minLength: 1, maxLength: 64, description: 'host/component, group/component, or a component on the same host (host/component:port for a live one).' }),
    requestSize: Type.Optional(Size('Size of the call.')),
    responseSize: Type.Optional(Size('Size of the reply.')),
    timeout: Type.Optional(Duration('Give up on the call after this long; the request fails.')),
    redis: Type.Optional(RedisRequests),
    http: Type.Optional(HttpRequests),
  },
  { ...Closed, description: 'A downstream call; to a live component it speaks redis or http, holding the worker until the reply.' },
)

/** Phold's defaults: ROSS's remote fraction and start events; a lookahead of a tenth of the mean. */
export const PHOLD_DEFAULTS = { remote: 0.25, mean: '1ms', lookahead: '100us', startEvents: 1 } as const

export const PholdSpec = Type.Object(
  {
    remote: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'Probability that an event goes to an LP drawn uniformly from all (itself included) rather than to itself (default 0.25).' })),
    mean: Type.Optional(Duration('Mean time from an event to the one it causes (default 1ms).')),
    lookahead: Type.Optional(Duration('Least time from an event to the one it causes, at most the mean (default 100us); make it the latency of the links between LPs.')),
    startEvents: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'Events each LP starts with (default 1).' })),
  },
  { ...Closed, description: 'Phold: the PHOLD parameters, as ROSS names them: an event causes one more at now + lookahead + Exp(mean − lookahead).' },
)

export const ModelKinds = ['Client', 'Server', 'Custom', 'Phold'] as const
export type ModelKind = (typeof ModelKinds)[number]

export const ModelSpec = Type.Object(
  {
    kind: Enum(ModelKinds, 'The model: Client, Server, Custom (a user module), or Phold (a PHOLD logical process, the benchmark of parallel simulators).'),
    // Client
    target: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Client: host/component, group/component, or a component on the same host. Phold: the group/component of every LP.' })),
    openLoop: Type.Optional(
      Type.Object(
        {
          rate: Type.Number({ exclusiveMinimum: 0, maximum: 1e9, description: 'Requests per second.' }),
          arrival: Type.Optional(Enum(['Poisson', 'Constant'] as const, 'Inter-arrival process (default Poisson).')),
        },
        Closed,
      ),
    ),
    closedLoop: Type.Optional(
      Type.Object(
        {
          users: Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'Concurrent users, each waiting for its reply before thinking again.' }),
          thinkTime: Type.Optional(Duration('Mean think time between a reply and the next request (exponential; default 0).')),
        },
        Closed,
      ),
    ),
    requestSize: Type.Optional(Size('Client: request size (default 512B).')),
    responseSize: Type.Optional(Size('Client: response size (default 1KiB).')),
    timeout: Type.Optional(Duration('Client: a request with no reply after this long counts as a timeout.')),
    balance: Type.Optional(Enum(['RoundRobin', 'Random'] as const, 'Client and calls: how a group target picks a replica (default RoundRobin).')),
    redis: Type.Optional(RedisRequests),
    http: Type.Optional(HttpRequests),
    // Server
    workers: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, description: 'Server: concurrent workers (default 1).' })),
    queueLimit: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000_000, description: 'Server: requests that may wait; more are rejected (default unbounded).' })),
    service: Type.Optional(ServiceTime),
    calls: Type.Optional(Type.Array(Call, { maxItems: LIMITS.callsMax, description: 'Server: downstream calls made for each request, holding the worker.' })),
    callMode: Type.Optional(Enum(['Sequential', 'FanOut'] as const, 'Server: make calls one after another or all at once (default Sequential).')),
    phold: Type.Optional(PholdSpec),
    // Custom
    module: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'Custom: path of an ES module (relative to the manifest) that exports the component.' })),
    params: Type.Optional(
      Type.Unsafe<Record<string, unknown>>({
        type: 'object',
        'x-kubernetes-preserve-unknown-fields': true,
        description: 'Custom: parameters handed to the module.',
      }),
    ),
  },
  { ...Closed, description: 'A modelled component.' },
)

/** Which ModelSpec fields each kind takes, and which it requires. validate.ts and the CRD CEL rules use this. */
export const MODEL_KINDS: Record<ModelKind, { fields: readonly string[]; required: readonly string[] }> = {
  Client: {
    fields: ['kind', 'target', 'openLoop', 'closedLoop', 'requestSize', 'responseSize', 'timeout', 'balance', 'redis', 'http'],
    required: ['target'],
  },
  Server: {
    fields: ['kind', 'workers', 'queueLimit', 'service', 'calls', 'callMode', 'balance'],
    required: ['service'],
  },
  Custom: { fields: ['kind', 'module', 'params'], required: ['module'] },
  Phold: { fields: ['kind', 'target', 'phold'], required: ['target'] },
}

export const ClockModes = ['CpuTime', 'WallTime', 'Cooperative'] as const

export const LiveSpec = Type.Object(
  {
    command: Type.Array(Type.String({ maxLength: 4096 }), { minItems: 1, maxItems: 256, description: 'Program and arguments ($(VAR) expands from the environment; arguments may be empty strings, the program may not). With image, the program inside that image: the image\'s ENTRYPOINT and CMD are not used.' }),
    image: Type.Optional(
      Type.String({
        pattern: IMAGE_REFERENCE_PATTERN,
        maxLength: IMAGE_REFERENCE_MAX,
        description:
          'Kubernetes: the container image that holds the program (registry/repository[:tag][@sha256:digest]). The host\'s pod runs it as a container of its own beside the sim-runtime, which starts command in it (docs/kubernetes.md). Without image, the program comes from the sim-runtime\'s image. livesim run ignores it (it runs command from the machine it runs on) and says so.',
      }),
    ),
    env: Type.Optional(
      Type.Array(
        Type.Object({ name: Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', maxLength: 256 }), value: Type.String({ maxLength: 65536 }) }, Closed),
        { maxItems: 256 },
      ),
    ),
    ports: Type.Optional(
      Type.Array(
        Type.Object(
          {
            name: Name(15, 'Port name, used in targets as host/component:port.'),
            port: Type.Integer({ minimum: 1, maximum: 65535 }),
          },
          Closed,
        ),
        { maxItems: 32, description: 'Ports the program serves to the simulated network.' },
      ),
    ),
    workingDir: Type.Optional(Type.String({ maxLength: 4096, description: "Directory the program runs in ($(VAR) expands; a relative one is taken from the host's work directory, which is the default). It must exist when the run starts." })),
    clock: Type.Optional(Enum(ClockModes, 'How the cell advances virtual time: by the CPU time it gets (CpuTime, default; frozen between quanta), by the wall while thawed (WallTime), or by the wall from the first clock reading of each quantum, the programs stopping at barriers by themselves (Cooperative; see docs/live.md).')),
    readinessTimeout: Type.Optional(Duration('Wall time to wait for the ports to accept (default 10s).')),
    terminationGracePeriod: Type.Optional(Duration('Wall time the program has to exit after SIGTERM when the run ends, before everything in its cell is killed (default 0s: killed at once, without SIGTERM). Its clock stands at the last barrier meanwhile.')),
    securityContext: Type.Optional(
      Type.Object(
        {
          runAsUser: Type.Optional(UserOrGroup('The user the program runs as: a UID, or a user name looked up in /etc/passwd of the machine that runs it (a package\'s user, such as postgres, has a different UID on each machine). Default: the runtime\'s user.')),
          runAsGroup: Type.Optional(UserOrGroup('The primary group the program runs as: a GID, or a group name looked up in /etc/group. Default: the group of runAsUser in /etc/passwd, else the runtime\'s group.')),
        },
        { ...Closed, description: 'Who the program runs as (as a container\'s securityContext on Kubernetes; names are a livesim extension). A runtime running as root switches to that user and group (no supplementary groups) and hands the program its work and clock directories; any other runtime can run programs only as itself.' },
      ),
    ),
  },
  { ...Closed, description: 'A real program run inside the host cell under virtual time.' },
)

export const ComponentSpec = Type.Object(
  {
    name: Name(LIMITS.componentNameMax, 'Component name, unique on its host.'),
    model: Type.Optional(ModelSpec),
    live: Type.Optional(LiveSpec),
  },
  { ...Closed, description: 'A component: exactly one of model or live.' },
)

// ---------------------------------------------------------------------------------------------
// Hosts and cluster

export const CellSpec = Type.Object(
  {
    cpu: Type.Optional(Type.String({ pattern: '^[0-9]+(\\.[0-9]+)?m?$', maxLength: 16, description: 'CPU for the cell (Kubernetes quantity: 1, 500m).' })),
    memory: Type.Optional(Type.String({ pattern: '^[0-9]+(Ki|Mi|Gi|Ti|K|M|G|T)?$', maxLength: 16, description: 'Memory for the cell (Kubernetes quantity: 512Mi).' })),
    speed: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1000, description: 'CPU speed factor of the simulated host relative to this machine (default 1).' })),
    cpus: Type.Optional(
      Type.String({ pattern: '^[0-9]{1,4}(-[0-9]{1,4})?(,[0-9]{1,4}(-[0-9]{1,4})?)*$', maxLength: 128, description: 'CPUs of the machine the cell may run on, as a cpuset list (1, 0-3, 0,2); default: any.' }),
    ),
  },
  { ...Closed, description: 'Resources of the cell that isolates the host.' },
)

export const HostSpec = Type.Object(
  {
    name: Name(LIMITS.hostNameMax, 'Host group name; replicas are named <name>-0, <name>-1, …'),
    replicas: Type.Optional(Type.Integer({ minimum: 1, maximum: LIMITS.replicasMax, description: 'Number of identical hosts (default 1).' })),
    cell: Type.Optional(CellSpec),
    components: Type.Array(ComponentSpec, { minItems: 1, maxItems: LIMITS.componentsPerHostMax }),
  },
  Closed,
)

export const SyncModes = ['Conservative', 'Slack'] as const

export const SyncSpec = Type.Object(
  {
    mode: Type.Optional(Enum(SyncModes, 'Conservative (default, exact) or Slack (faster, counts late messages).')),
    quantum: Type.Optional(Duration('Largest window when live components run; at most the smallest link latency in Conservative mode.')),
    slack: Type.Optional(Duration('Slack mode: how far past the barrier hosts may run.')),
  },
  Closed,
)

export const RunPolicy = Type.Object(
  {
    activeDeadlineSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 30 * 24 * 3600, description: 'Wall seconds a run may take from its start; then it fails with DeadlineExceeded.' })),
    ttlSecondsAfterFinished: Type.Optional(Type.Integer({ minimum: 0, maximum: 365 * 24 * 3600, description: 'Delete the SimCluster (and everything it owns) this long after it finished.' })),
    backoffLimit: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, description: 'Retries of the whole run after a host or leader pod fails (default 2).' })),
  },
  { ...Closed, description: 'Kubernetes only: deadlines, clean-up and retries of the run.' },
)

export const ResultsDetails = ['Auto', 'Groups', 'Hosts'] as const

export const RESULTS_LIMITS = {
  /** detail Auto: every host's results up to this many hosts, per group above. */
  autoHostsMax: 64,
  outliersDefault: 5,
  outliersMax: 100,
  /** Runtimes in SimCluster status.stragglers. */
  stragglersShown: 5,
} as const

export const ResultsSpec = Type.Object(
  {
    detail: Type.Optional(
      Enum(
        ResultsDetails,
        'Groups: per host group, counters and merged latency histograms, link totals per pair of groups, and the outliers. ' +
          'Hosts: that, and every host\'s components and every link. ' +
          `Auto (default): Hosts up to ${RESULTS_LIMITS.autoHostsMax} hosts, Groups above.`,
      ),
    ),
    outliers: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: RESULTS_LIMITS.outliersMax,
        description: `How many outliers each list holds: the replicas of a group with the highest p99, the links with the most drops (default ${RESULTS_LIMITS.outliersDefault}).`,
      }),
    ),
  },
  { ...Closed, description: 'What the results of the run hold.' },
)

export const PLACEMENT_LIMITS = {
  /** Runtimes that carry a SimCluster's modelled hosts: pods on Kubernetes, processes locally. */
  runtimesMax: 1000,
  hostsPerRuntimeMax: LIMITS.hostsTotalMax,
} as const

export const PlacementSpec = Type.Object(
  {
    runtimes: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: PLACEMENT_LIMITS.runtimesMax,
        description: 'How many runtimes carry the modelled hosts (as many as there are modelled hosts at most), each at most ceil(hosts / runtimes) of them. A host with a live component always has a runtime of its own besides.',
      }),
    ),
    hostsPerRuntime: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: PLACEMENT_LIMITS.hostsPerRuntimeMax,
        description: 'At most how many modelled hosts one runtime carries; the runtimes are ceil(hosts / hostsPerRuntime). A host with a live component always has a runtime of its own besides.',
      }),
    ),
  },
  {
    ...Closed,
    description:
      'How the hosts are spread over runtimes (pods on Kubernetes, processes with livesim run): set runtimes or hostsPerRuntime. ' +
      'The replicas of a host group stay together where they fit, and the hosts joined by the shortest links share a runtime first, so the links between runtimes are the longest. ' +
      'Results do not depend on it. Default: one runtime per host on Kubernetes; with livesim run, every host in its own process (or --partition).',
  },
)

export const SimClusterSpec = Type.Object(
  {
    endTime: Duration('Virtual time at which the run ends.'),
    seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 4294967295, description: 'Seed of every random stream (default 1).' })),
    sync: Type.Optional(SyncSpec),
    network: Type.Optional(NetworkSpec),
    hosts: Type.Array(HostSpec, { minItems: 1, maxItems: LIMITS.hostGroupsMax }),
    runPolicy: Type.Optional(RunPolicy),
    results: Type.Optional(ResultsSpec),
    placement: Type.Optional(PlacementSpec),
  },
  { ...Closed, description: 'A simulation: hosts, the network between them, and what each host runs.' },
)

export const ObjectMeta = Type.Object(
  {
    name: Name(LIMITS.clusterNameMax, 'Name of the SimCluster.'),
    namespace: Type.Optional(Type.String({ maxLength: 63 })),
    labels: Type.Optional(Type.Record(Type.String(), Type.String())),
    annotations: Type.Optional(Type.Record(Type.String(), Type.String())),
  },
  // Objects read back from a cluster carry uid, resourceVersion and friends.
  { additionalProperties: true },
)

export const SimCluster = Type.Object(
  {
    apiVersion: Type.Literal(API_VERSION),
    kind: Type.Literal('SimCluster'),
    metadata: ObjectMeta,
    spec: SimClusterSpec,
    status: Type.Optional(Type.Unsafe<Record<string, unknown>>({ type: 'object' })),
  },
  Closed,
)

// ---------------------------------------------------------------------------------------------
// Status (written by the operator; here so that the CRDs carry its schema)

export const Condition = Type.Object(
  {
    type: Type.String({ maxLength: 316 }),
    status: Enum(['True', 'False', 'Unknown'] as const, 'Condition status.'),
    observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
    lastTransitionTime: Type.String({ format: 'date-time' }),
    reason: Type.String({ maxLength: 1024 }),
    message: Type.String({ maxLength: 32768 }),
  },
  Closed,
)

export const Phases = ['Pending', 'Scheduling', 'Running', 'Succeeded', 'Failed'] as const

export const Straggler = Type.Object(
  {
    runtime: Type.String({ maxLength: 128, description: 'The runtime (its pod on Kubernetes).' }),
    hosts: Type.String({ maxLength: 256, description: 'The hosts it carries.' }),
    lastToReport: Type.Integer({ minimum: 0, description: 'Barriers at which its report came last.' }),
    reportSeconds: Type.Number({ minimum: 0, description: 'Wall seconds from each grant to its report, summed: its windows, and the way there and back.' }),
    waitSeconds: Type.Number({ minimum: 0, description: 'Wall seconds from its report to the next grant, summed: waiting for the others.' }),
    reportP50Seconds: Type.Number({ minimum: 0 }),
    reportP99Seconds: Type.Number({ minimum: 0 }),
  },
  { ...Closed, description: 'A runtime that held barriers up.' },
)

export const SimClusterStatus = Type.Object(
  {
    observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
    phase: Type.Optional(Enum(Phases, 'Lifecycle phase of the run.')),
    virtualTime: Type.Optional(Type.String({ description: 'Simulated time reached, e.g. 1.25s.' })),
    virtualTimeNs: Type.Optional(Type.Integer({ minimum: 0 })),
    progress: Type.Optional(Type.String({ description: 'Share of endTime reached, e.g. 42%.' })),
    slowdown: Type.Optional(Type.String({ description: 'Wall seconds per virtual second.' })),
    message: Type.Optional(Type.String({ maxLength: 32768 })),
    attempt: Type.Optional(Type.Integer({ minimum: 1, description: 'Current attempt of the run (1 + retries).' })),
    startTime: Type.Optional(Type.String({ format: 'date-time' })),
    completionTime: Type.Optional(Type.String({ format: 'date-time' })),
    leader: Type.Optional(Type.String({ description: 'Address of the leader of the current attempt.' })),
    hosts: Type.Optional(Type.Object({ ready: Type.Integer({ minimum: 0 }), total: Type.Integer({ minimum: 0 }) }, Closed)),
    hostsSummary: Type.Optional(Type.String({ description: 'ready/total, for the printer column.' })),
    placement: Type.Optional(
      Type.Object(
        {
          runtimes: Type.Integer({ minimum: 0, description: 'Runtime pods carrying the hosts (one SimHost each).' }),
          hostsPerRuntimeMax: Type.Integer({ minimum: 0, description: 'Most hosts one runtime carries.' }),
          cutLatency: Type.Optional(Type.String({ description: 'The shortest link of the communication graph between two runtimes (none: no link crosses).' })),
        },
        { ...Closed, description: 'Where the hosts run (spec.placement); which runtime carries which hosts: ConfigMap <name>-config, key runtimes.' },
      ),
    ),
    stragglers: Type.Optional(Type.Array(Straggler, { maxItems: RESULTS_LIMITS.stragglersShown, description: 'The runtimes most often last to report a barrier (then the longest to report), most first; the whole profile is in the results.' })),
    results: Type.Optional(
      Type.Object(
        {
          configMap: Type.String(),
          digest: Type.String(),
          barriers: Type.Integer({ minimum: 0 }),
          causalityViolations: Type.Integer({ minimum: 0 }),
          wallSeconds: Type.Number({ minimum: 0 }),
          liveCellMode: Type.Optional(Type.String({ description: 'Runs with live components: the cell mode the runtimes used (cgroup2, cgroup1, signals, or mixed).' })),
        },
        Closed,
      ),
    ),
    conditions: Type.Optional(Type.Array(Condition, { maxItems: 32 })),
  },
  Closed,
)

export const SimHostSpec = Type.Object(
  {
    cluster: Name(LIMITS.clusterNameMax, 'The owning SimCluster.'),
    host: Type.Optional(Type.String({ minLength: 1, maxLength: 32, description: 'Replica name, e.g. web-0, when the runtime carries one host.' })),
    group: Type.Optional(Name(LIMITS.hostNameMax, 'Host group of host.')),
    index: Type.Optional(Type.Integer({ minimum: 0, maximum: LIMITS.replicasMax, description: 'Replica number of host.' })),
    hosts: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 65536,
        description: 'The hosts the runtime carries (spec.placement of the SimCluster), comma-separated, consecutive replicas of a group as a range: client-0..24,db-0.',
      }),
    ),
    hostCount: Type.Optional(Type.Integer({ minimum: 1, maximum: LIMITS.hostsTotalMax, description: 'How many hosts the runtime carries.' })),
    cell: Type.Optional(CellSpec),
    leader: Type.Optional(Type.String({ maxLength: 256, description: 'URL of the leader the runtime connects to (set by the operator).' })),
    attempt: Type.Optional(Type.Integer({ minimum: 1, description: 'Run attempt this host belongs to (set by the operator).' })),
  },
  Closed,
)

export const SimHostStatus = Type.Object(
  {
    observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
    phase: Type.Optional(Enum(['Pending', 'Running', 'Succeeded', 'Failed'] as const, 'Phase of the host runtime.')),
    pod: Type.Optional(Type.String()),
    virtualTime: Type.Optional(Type.String()),
    message: Type.Optional(Type.String({ maxLength: 32768 })),
    conditions: Type.Optional(Type.Array(Condition, { maxItems: 32 })),
  },
  Closed,
)

// ---------------------------------------------------------------------------------------------
// Experiment fleets: a SimSweep runs one SimCluster per grid point and seed (ARCHITECTURE.md
// "Experiment fleets: SimSweep"). Its semantic checks (paths resolve in the template, each grid
// point is a valid SimCluster, metrics name real components and fields) are in sweep/validate.ts.

export const SWEEP_LIMITS = {
  /** A trial is named <sweep>-p<point>-s<seed>; with at most trialsMax trials the suffix takes ≤ 9 characters. */
  sweepNameMax: 30,
  parametersMax: 8,
  valuesMax: 100,
  seedsMax: 100,
  /** Grid points × seeds: each trial is a whole simulation. */
  trialsMax: 1000,
  metricsMax: 16,
  parallelismMax: 64,
  /** Rows of status.points; the whole table is in the results. */
  statusPointsMax: 256,
} as const

export const Aggregates = ['Mean', 'Max', 'Min', 'Sum'] as const
export const Goals = ['Minimize', 'Maximize'] as const
export const SweepPhases = ['Pending', 'Running', 'Succeeded', 'Failed'] as const

/** Parameter and metric names: column names of results.csv. */
const SWEEP_IDENTIFIER = '^[A-Za-z][A-Za-z0-9_]*$'
const SweepIdentifier = (description: string) => Type.String({ pattern: SWEEP_IDENTIFIER, minLength: 1, maxLength: 40, description })

/** Any JSON value: a parameter takes whatever the field at its path takes. */
const AnyValue = (description: string) => Type.Unsafe<unknown>({ 'x-kubernetes-preserve-unknown-fields': true, description })

export const SweepParameter = Type.Object(
  {
    name: SweepIdentifier('Parameter name: a column of results.csv.'),
    path: Type.String({
      pattern: '^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$',
      maxLength: 256,
      description: 'Field of the template to set, dotted: a list of named items (hosts, components, ports, env) is indexed by name, any other list by position (hosts.db.components.sql.model.workers, network.links.0.latency).',
    }),
    values: Type.Array(AnyValue('A value valid at path.'), { minItems: 1, maxItems: SWEEP_LIMITS.valuesMax, description: 'The values to try; the grid is the cartesian product of every parameter\'s values.' }),
  },
  { ...Closed, description: 'One axis of the grid.' },
)

export const SweepMetric = Type.Object(
  {
    name: SweepIdentifier('Metric name: a column of results.csv.'),
    component: Type.String({
      pattern: '^[a-z]([-a-z0-9]*[a-z0-9])?/[a-z]([-a-z0-9]*[a-z0-9])?$',
      maxLength: 64,
      description: 'group/component (every replica of the group, aggregated) or host/component (one replica, e.g. client-0/load).',
    }),
    field: Type.String({
      pattern: '^[A-Za-z0-9_]+(\\.[A-Za-z0-9_]+)*$',
      maxLength: 128,
      description: 'A numeric field of the component\'s results, dotted: latency.p99Ns, throughputPerSec, response.meanNs, utilization.',
    }),
    aggregate: Type.Optional(Enum(Aggregates, 'How the replicas of a group combine into one value per trial (default Mean).')),
  },
  { ...Closed, description: 'A number each trial reports.' },
)

export const SweepObjective = Type.Object(
  {
    metric: SweepIdentifier('The metric that ranks the grid points.'),
    goal: Enum(Goals, 'Whether the best point has the smallest or the largest mean.'),
  },
  Closed,
)

export const SimSweepSpec = Type.Object(
  {
    template: SimClusterSpec,
    parameters: Type.Array(SweepParameter, { minItems: 1, maxItems: SWEEP_LIMITS.parametersMax, description: 'The grid: the cartesian product of the parameters\' values.' }),
    seeds: Type.Optional(Type.Integer({ minimum: 1, maximum: SWEEP_LIMITS.seedsMax, description: `Replications of each grid point (default 1); replication i runs with seed template.seed + i. Grid points × seeds is at most ${SWEEP_LIMITS.trialsMax}.` })),
    parallelism: Type.Optional(Type.Integer({ minimum: 1, maximum: SWEEP_LIMITS.parallelismMax, description: 'Trials running at once (default: with livesim sweep, half the cores of the machine, at least 1; on Kubernetes, 1).' })),
    maxFailedTrials: Type.Optional(Type.Integer({ minimum: 0, maximum: SWEEP_LIMITS.trialsMax, description: 'Failed trials tolerated; one more fails the sweep and starts no further trials (default 0).' })),
    metrics: Type.Array(SweepMetric, { minItems: 1, maxItems: SWEEP_LIMITS.metricsMax }),
    objective: SweepObjective,
    ttlSecondsAfterFinished: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 365 * 24 * 3600,
        description: 'On Kubernetes: delete the trials (their SimClusters, pods and results) this long after the sweep finished; the SimSweep and its ConfigMap <name>-results stay. Unset: the trials stay. livesim sweep ignores it.',
      }),
    ),
  },
  { ...Closed, description: 'A grid of SimClusters: one trial per parameter point and seed, compared by their metrics.' },
)

export const SweepMeta = Type.Object(
  {
    name: Name(SWEEP_LIMITS.sweepNameMax, 'Name of the SimSweep; trials are named <name>-p<point>-s<seed>.'),
    namespace: Type.Optional(Type.String({ maxLength: 63 })),
    labels: Type.Optional(Type.Record(Type.String(), Type.String())),
    annotations: Type.Optional(Type.Record(Type.String(), Type.String())),
  },
  { additionalProperties: true },
)

export const SimSweep = Type.Object(
  {
    apiVersion: Type.Literal(API_VERSION),
    kind: Type.Literal('SimSweep'),
    metadata: SweepMeta,
    spec: SimSweepSpec,
    status: Type.Optional(Type.Unsafe<Record<string, unknown>>({ type: 'object' })),
  },
  Closed,
)

/** A metric of one grid point over its seeds: the mean and its 95 % Student t confidence interval. */
export const SweepMetricSummary = Type.Object(
  {
    name: Type.String(),
    n: Type.Integer({ minimum: 0, description: 'Trials that reported the metric.' }),
    mean: Type.Optional(Type.Number()),
    ciLow: Type.Optional(Type.Number({ description: 'Lower end of the 95 % confidence interval of the mean (n ≥ 2).' })),
    ciHigh: Type.Optional(Type.Number()),
    distinctFromBest: Type.Optional(Type.Boolean({ description: 'The interval does not overlap the best point\'s.' })),
  },
  Closed,
)

export const SweepPointStatus = Type.Object(
  {
    point: Type.Integer({ minimum: 0 }),
    values: Type.Array(AnyValue('The value of each parameter, in spec.parameters order.'), { maxItems: SWEEP_LIMITS.parametersMax }),
    trialsDone: Type.Integer({ minimum: 0 }),
    metrics: Type.Array(SweepMetricSummary, { maxItems: SWEEP_LIMITS.metricsMax }),
  },
  Closed,
)

export const SimSweepStatus = Type.Object(
  {
    observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
    phase: Type.Optional(Enum(SweepPhases, 'Lifecycle phase of the sweep.')),
    message: Type.Optional(Type.String({ maxLength: 32768 })),
    startTime: Type.Optional(Type.String({ format: 'date-time' })),
    completionTime: Type.Optional(Type.String({ format: 'date-time' })),
    trials: Type.Optional(
      Type.Object(
        {
          total: Type.Integer({ minimum: 0 }),
          succeeded: Type.Integer({ minimum: 0 }),
          failed: Type.Integer({ minimum: 0 }),
          running: Type.Integer({ minimum: 0 }),
        },
        Closed,
      ),
    ),
    trialsSummary: Type.Optional(Type.String({ description: 'done/total, for the printer column.' })),
    best: Type.Optional(SweepPointStatus),
    bestSummary: Type.Optional(Type.String({ description: 'The best point\'s parameters and objective, for the printer column.' })),
    points: Type.Optional(Type.Array(SweepPointStatus, { maxItems: SWEEP_LIMITS.statusPointsMax, description: `One row per grid point (the first ${SWEEP_LIMITS.statusPointsMax}); every point is in the results ConfigMap.` })),
    results: Type.Optional(Type.Object({ configMap: Type.String() }, Closed)),
    conditions: Type.Optional(Type.Array(Condition, { maxItems: 32 })),
  },
  Closed,
)

export type LinkSpec = Static<typeof LinkSpec>
export type LinkOverride = Static<typeof LinkOverride>
export type ModelSpec = Static<typeof ModelSpec>
export type LiveSpec = Static<typeof LiveSpec>
export type ComponentSpec = Static<typeof ComponentSpec>
export type HostSpec = Static<typeof HostSpec>
export type SimClusterSpec = Static<typeof SimClusterSpec>
export type SimCluster = Static<typeof SimCluster>
export type SimClusterStatus = Static<typeof SimClusterStatus>
export type StragglerStatus = Static<typeof Straggler>
export type SimHostSpec = Static<typeof SimHostSpec>
export type SimHostStatus = Static<typeof SimHostStatus>
export type RunPolicy = Static<typeof RunPolicy>
export type ResultsSpec = Static<typeof ResultsSpec>
export type PlacementSpec = Static<typeof PlacementSpec>
export type RedisRequests = Static<typeof RedisRequests>
export type HttpRequests = Static<typeof HttpRequests>
export type SweepParameter = Static<typeof SweepParameter>
export type SweepMetric = Static<typeof SweepMetric>
export type SimSweepSpec = Static<typeof SimSweepSpec>
export type SimSweep = Static<typeof SimSweep>
export type SimSweepStatus = Static<typeof SimSweepStatus>
export type SweepPointStatus = Static<typeof SweepPointStatus>
