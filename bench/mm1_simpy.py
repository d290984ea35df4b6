"""SimPy baseline for the engine-mm1 benchmark (run by bench/engine-mm1.ts, not by hand).

The same M/M/1 model as the livesim manifest in engine-mm1.ts: Poisson arrivals at `rate` per
second, one server (a capacity-1 Resource, FIFO), exponential service with mean `mean_s` seconds.

Counted events, one for each event livesim's engine pops from its heap for a request (see the
comment in engine-mm1.ts):
  arrival           livesim: Client timer T_ARRIVAL       here: the source's inter-arrival Timeout
  request delivery  livesim: EV_MESSAGE at the Server     here: the customer process starting
                                                                (its Initialize event)
  service done      livesim: Server timer T_SERVICE_DONE  here: the service Timeout
  reply delivery    livesim: EV_MESSAGE at the Client     here: the customer process ending
                                                                (its Process event)
SimPy itself schedules more internal events than these (Request/Release of the Resource), as is
idiomatic; they are work SimPy needs for this model, but they are not counted.

Prints one JSON object: {"events", "wallSeconds", "arrivals", "deliveries", "completions",
"replies", "simpy"}. Wall time covers env.run() only, not interpreter start or imports.
"""

import json
import random
import sys
import time

import simpy


class Counts:
    __slots__ = ("arrivals", "deliveries", "completions", "replies")

    def __init__(self) -> None:
        self.arrivals = 0
        self.deliveries = 0
        self.completions = 0
        self.replies = 0


def customer(env, server, service_rng, mean_s, c):
    c.deliveries += 1  # the request reaches the server
    with server.request() as req:
        yield req
        yield env.timeout(service_rng.expovariate(1.0 / mean_s))
        c.completions += 1  # service done; the reply is sent
    c.replies += 1  # the reply reaches the client (this process's end event)


def source(env, server, arrival_rng, service_rng, rate, mean_s, c):
    while True:
        yield env.timeout(arrival_rng.expovariate(rate))
        c.arrivals += 1
        env.process(customer(env, server, service_rng, mean_s, c))


def main() -> None:
    rate = float(sys.argv[1])
    mean_s = float(sys.argv[2])
    end_s = float(sys.argv[3])
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=1)
    c = Counts()
    env.process(source(env, server, random.Random(seed), random.Random(seed + 1), rate, mean_s, c))
    t0 = time.perf_counter()
    env.run(until=end_s)
    wall = time.perf_counter() - t0
    events = c.arrivals + c.deliveries + c.completions + c.replies
    print(
        json.dumps(
            {
                "events": events,
                "wallSeconds": wall,
                "arrivals": c.arrivals,
                "deliveries": c.deliveries,
                "completions": c.completions,
                "replies": c.replies,
                "simpy": simpy.__version__,
                "python": sys.version.split()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
