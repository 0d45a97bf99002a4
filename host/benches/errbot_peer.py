"""Errbot 6.2.1's own in-process test backend (TestBot), measured the way round_trip.rs
measures roost: `!echo hi` pushed in, reply popped out, median and p99; plus startup time and
resident memory. Prints shell-style assignments for side_by_side.sh to read."""
import logging
import time

from errbot.backends.test import TestBot

WARMUP, ROUNDS = 200, 3000

t0 = time.perf_counter()
bot = TestBot(loglevel=logging.ERROR)
bot.start()
startup = time.perf_counter() - t0
for _ in range(WARMUP):
    bot.bot.push_message("!echo hi")
    bot.bot.pop_message()
samples = []
for _ in range(ROUNDS):
    t = time.perf_counter()
    bot.bot.push_message("!echo hi")
    reply = bot.bot.pop_message()
    samples.append(time.perf_counter() - t)
    assert reply == "hi", reply
samples.sort()
rss_kb = 0
with open("/proc/self/status") as f:
    for line in f:
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
print(f"ERRBOT_MEDIAN_MS={samples[ROUNDS // 2] * 1000:.4f}")
print(f"ERRBOT_P99_MS={samples[ROUNDS * 99 // 100] * 1000:.4f}")
print(f"ERRBOT_STARTUP_S={startup:.3f}")
print(f"ERRBOT_RSS_MB={rss_kb / 1024:.1f}")
bot.stop()
