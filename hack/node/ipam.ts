// Pod IPs: loopback addresses <base>.x.y handed out from a counter. All of 127.0.0.0/8 is
// routed to the loopback interface on Linux, so a program can bind to its pod IP and any other
// local program can connect to it.

export class IpAllocator {
  private readonly base: string
  private counter = 0
  private readonly inUse = new Set<string>()

  /** base: the first two octets, e.g. "127.77". */
  constructor(base: string) {
    if (!/^127\.(25[0-5]|2[0-4]\d|1?\d?\d)$/.test(base)) throw new Error(`--pod-ip-base must be two octets inside 127.0.0.0/8 (like 127.77), not ${base}`)
    this.base = base
  }

  /** The next free address; addresses are not reused until the counter wraps (65024 pods). */
  next(): string {
    for (let tries = 0; tries < 256 * 254; tries++) {
      const i = this.counter++ % (256 * 254)
      const ip = `${this.base}.${Math.floor(i / 254)}.${(i % 254) + 1}`
      if (!this.inUse.has(ip)) {
        this.inUse.add(ip)
        return ip
      }
    }
    throw new Error(`no free pod IP left in ${this.base}.0.0/16`)
  }

  /** Keep an address a pod already had (the node restarted); false if it is not ours to give. */
  reserve(ip: string): boolean {
    if (!ip.startsWith(`${this.base}.`) || this.inUse.has(ip)) return false
    this.inUse.add(ip)
    return true
  }

  release(ip: string): void {
    this.inUse.delete(ip)
  }
}
