#!/usr/bin/env node
// A command-line driver of kafkajs (pinned in package.json) for the server tests.
//
//   node kafkajs_client.js BROKER produce TOPIC N [--acks -1|0|1] [--idempotent]
//                                 [--partition P] [--compression gzip] [--prefix S]
//   node kafkajs_client.js BROKER consume TOPIC GROUP N [--timeout-ms MS]
//                                 [--from-latest] [--no-commit] [--session-timeout-ms MS]
//                                 [--rebalance-timeout-ms MS] [--heartbeat-ms MS]
//                                 [--max-wait-ms MS] [--seek PARTITION:OFFSET]
//   node kafkajs_client.js BROKER admin create TOPIC PARTITIONS
//   node kafkajs_client.js BROKER admin delete TOPIC
//   node kafkajs_client.js BROKER admin partitions TOPIC COUNT
//   node kafkajs_client.js BROKER admin configs TOPIC
//   node kafkajs_client.js BROKER admin alter-configs TOPIC NAME=VALUE...
//   node kafkajs_client.js BROKER admin delete-records TOPIC PARTITION OFFSET
//   node kafkajs_client.js BROKER admin topics
//   node kafkajs_client.js BROKER admin metadata TOPIC
//   node kafkajs_client.js BROKER admin offsets TOPIC
//   node kafkajs_client.js BROKER admin offsets-by-time TOPIC TIMESTAMP_MS
//   node kafkajs_client.js BROKER admin group-offsets GROUP TOPIC
//   node kafkajs_client.js BROKER admin lag GROUP TOPIC
//
// kafkajs heartbeats only between fetches: with --session-timeout-ms, give a
// --max-wait-ms (how long a fetch waits for records; kafkajs' default 5000)
// well below it, or the member misses its session while a fetch waits.
// consume --seek moves the consumer to OFFSET of PARTITION once it runs
// (consumer.seek), before it reads that partition.
//
// Any command also takes the connection options
//   [--client-id ID] the Kafka client id (default "mqlog-tests-kafkajs");
//   [--ssl-ca PEM]  TLS, the server's certificate checked against PEM;
//   [--sasl-mechanism plain|scram-sha-256 --sasl-username U --sasl-password P]
//                   a SASL login.
//
// stdout carries only JSON lines, one per thing done, each with an "op":
//   produce: {"op":"produced","topic","partition","base_offset"} per partition
//            written (one send of N records: key "<prefix>key-<i>", value
//            "<prefix>value-<i>", header "index": "<i>"), then {"op":"done","count"};
//   consume: {"op":"record","topic","partition","offset","key","value","headers",
//            "timestamp"} per record (strings: UTF-8; null key stays null), then
//            {"op":"done","count"} after N records (offsets committed unless
//            --no-commit), or {"op":"timeout","count"} and exit status 1; on
//            SIGTERM it stops, leaves the group and prints {"op":"stopped","count"};
//   admin:   {"op":"created"|"deleted"|"partitions"|"configs"|"altered"|
//            "records_deleted"|"topics"|"metadata"|"offsets"|"offsets_by_time"|
//            "group_offsets"|"lag",...}; alter-configs uses AlterConfigs (kafkajs
//            has no IncrementalAlterConfigs); lag is the
//            group's committed offset (fetchOffsets) and the end offset
//            (fetchTopicOffsets) of each partition, and their difference.
// Any failure prints {"op":"error","message"} and exits with status 1. kafkajs'
// own log goes to stderr.
"use strict";

const fs = require("fs");
const { Kafka, CompressionTypes, ConfigResourceTypes, logLevel } = require("kafkajs");

function usage() {
  process.stderr.write(
    "usage: kafkajs_client.js BROKER produce TOPIC N [options] | " +
      "consume TOPIC GROUP N [options] | admin create|delete|partitions|configs|" +
      "alter-configs|delete-records|topics|" +
      "metadata|offsets|offsets-by-time|group-offsets|lag ...\n",
  );
  process.exit(2);
}

function emit(line) {
  process.stdout.write(JSON.stringify(line) + "\n");
}

// Split argv into positional words and --flags (a flag takes the next word as
// its value unless it is one of the boolean ones).
const BOOLEAN_FLAGS = new Set(["--idempotent", "--from-latest", "--no-commit"]);
function parse(argv) {
  const words = [];
  const flags = {};
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i];
    if (!word.startsWith("--")) {
      words.push(word);
    } else if (BOOLEAN_FLAGS.has(word)) {
      flags[word] = true;
    } else if (i + 1 < argv.length) {
      flags[word] = argv[++i];
    } else {
      usage();
    }
  }
  return { words, flags };
}

function count(text) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) usage();
  return n;
}

function text(buffer) {
  return buffer === null || buffer === undefined ? null : buffer.toString("utf8");
}

const stderrLog = () => ({ namespace, level, log }) => {
  process.stderr.write(`${namespace} ${level} ${log.message}\n`);
};

async function produce(kafka, topic, n, flags) {
  const idempotent = Boolean(flags["--idempotent"]);
  const producer = kafka.producer({ idempotent, allowAutoTopicCreation: false });
  await producer.connect();
  try {
    const prefix = flags["--prefix"] || "";
    const messages = [];
    for (let i = 0; i < n; i++) {
      const message = {
        key: `${prefix}key-${i}`,
        value: `${prefix}value-${i}`,
        headers: { index: String(i) },
      };
      if (flags["--partition"] !== undefined) message.partition = count(flags["--partition"]);
      messages.push(message);
    }
    const acks = flags["--acks"] !== undefined ? Number(flags["--acks"]) : -1;
    const compression =
      flags["--compression"] === "gzip" ? CompressionTypes.GZIP : CompressionTypes.None;
    const results = await producer.send({ topic, messages, acks, compression });
    for (const r of results) {
      emit({ op: "produced", topic: r.topicName, partition: r.partition,
             base_offset: Number(r.baseOffset) });
    }
    emit({ op: "done", count: n });
  } finally {
    await producer.disconnect();
  }
}

async function consume(kafka, topic, group, n, flags) {
  const timeoutMs = flags["--timeout-ms"] !== undefined ? count(flags["--timeout-ms"]) : 30000;
  const commit = !flags["--no-commit"];
  const settings = { groupId: group, allowAutoTopicCreation: false };
  for (const [flag, name] of [["--session-timeout-ms", "sessionTimeout"],
                              ["--rebalance-timeout-ms", "rebalanceTimeout"],
                              ["--heartbeat-ms", "heartbeatInterval"],
                              ["--max-wait-ms", "maxWaitTimeInMs"]]) {
    if (flags[flag] !== undefined) settings[name] = count(flags[flag]);
  }
  const consumer = kafka.consumer(settings);
  await consumer.connect();
  let seen = 0;
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: !flags["--from-latest"] });
    let timer;
    let finish;
    const finished = new Promise((resolve) => {
      finish = resolve;
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    process.once("SIGTERM", () => {
      clearTimeout(timer);
      finish("stopped");
    });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ topic: from, partition, message }) => {
        if (seen >= n) return;
        const headers = {};
        for (const [name, value] of Object.entries(message.headers || {})) {
          headers[name] = Array.isArray(value) ? value.map(text) : text(value);
        }
        emit({ op: "record", topic: from, partition, offset: Number(message.offset),
               key: text(message.key), value: text(message.value), headers,
               timestamp: Number(message.timestamp) });
        if (commit) {
          await consumer.commitOffsets([
            { topic: from, partition, offset: String(Number(message.offset) + 1) },
          ]);
        }
        seen += 1;
        if (seen >= n) {
          clearTimeout(timer);
          finish("done");
        }
      },
    });
    if (flags["--seek"] !== undefined) {
      const [partition, offset] = flags["--seek"].split(":");
      consumer.seek({ topic, partition: count(partition), offset: String(count(offset)) });
    }
    const outcome = await finished;
    emit({ op: outcome, count: seen });
    return outcome !== "timeout";
  } finally {
    await consumer.disconnect();
  }
}

async function admin(kafka, words) {
  const client = kafka.admin();
  await client.connect();
  try {
    const [action, ...rest] = words;
    if (action === "create" && rest.length === 2) {
      const created = await client.createTopics({
        topics: [{ topic: rest[0], numPartitions: count(rest[1]), replicationFactor: 1 }],
        waitForLeaders: true,
      });
      emit({ op: "created", topic: rest[0], partitions: count(rest[1]), created });
    } else if (action === "delete" && rest.length === 1) {
      await client.deleteTopics({ topics: [rest[0]] });
      emit({ op: "deleted", topic: rest[0] });
    } else if (action === "partitions" && rest.length === 2) {
      await client.createPartitions({ topicPartitions: [{ topic: rest[0], count: count(rest[1]) }] });
      emit({ op: "partitions", topic: rest[0], count: count(rest[1]) });
    } else if (action === "configs" && rest.length === 1) {
      const { resources } = await client.describeConfigs({
        resources: [{ type: ConfigResourceTypes.TOPIC, name: rest[0] }],
        includeSynonyms: false,
      });
      const configs = {};
      for (const entry of resources[0].configEntries) configs[entry.configName] = entry.configValue;
      emit({ op: "configs", topic: rest[0], error_code: resources[0].errorCode, configs });
    } else if (action === "alter-configs" && rest.length >= 2) {
      const configEntries = rest.slice(1).map((pair) => {
        const at = pair.indexOf("=");
        return { name: pair.slice(0, at), value: pair.slice(at + 1) };
      });
      await client.alterConfigs({
        validateOnly: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: rest[0], configEntries }],
      });
      emit({ op: "altered", topic: rest[0] });
    } else if (action === "delete-records" && rest.length === 3) {
      // kafkajs looks the leader up in its cache only: load the topic's metadata first.
      await client.fetchTopicMetadata({ topics: [rest[0]] });
      await client.deleteTopicRecords({
        topic: rest[0], partitions: [{ partition: count(rest[1]), offset: rest[2] }],
      });
      emit({ op: "records_deleted", topic: rest[0], partition: count(rest[1]) });
    } else if (action === "topics" && rest.length === 0) {
      emit({ op: "topics", topics: (await client.listTopics()).sort() });
    } else if (action === "metadata" && rest.length === 1) {
      const { topics } = await client.fetchTopicMetadata({ topics: [rest[0]] });
      emit({ op: "metadata", topics: topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({ partition: p.partitionId, leader: p.leader }))
          .sort((a, b) => a.partition - b.partition),
      })) });
    } else if (action === "offsets" && rest.length === 1) {
      const offsets = await client.fetchTopicOffsets(rest[0]);
      emit({ op: "offsets", topic: rest[0], partitions: offsets.map((o) => ({
        partition: o.partition, low: Number(o.low), high: Number(o.high),
      })).sort((a, b) => a.partition - b.partition) });
    } else if (action === "offsets-by-time" && rest.length === 2) {
      const offsets = await client.fetchTopicOffsetsByTimestamp(rest[0], count(rest[1]));
      emit({ op: "offsets_by_time", topic: rest[0], timestamp: count(rest[1]),
             partitions: offsets.map((o) => ({ partition: o.partition, offset: Number(o.offset) }))
               .sort((a, b) => a.partition - b.partition) });
    } else if (action === "lag" && rest.length === 2) {
      const [entry] = await client.fetchOffsets({ groupId: rest[0], topics: [rest[1]] });
      const ends = {};
      for (const o of await client.fetchTopicOffsets(rest[1])) ends[o.partition] = Number(o.high);
      emit({ op: "lag", group: rest[0], topic: rest[1],
             partitions: entry.partitions.map((p) => ({
               partition: p.partition, committed: Number(p.offset), end: ends[p.partition],
               lag: ends[p.partition] - Math.max(Number(p.offset), 0),
             })).sort((a, b) => a.partition - b.partition) });
    } else if (action === "group-offsets" && rest.length === 2) {
      const [entry] = await client.fetchOffsets({ groupId: rest[0], topics: [rest[1]] });
      emit({ op: "group_offsets", group: rest[0], topic: rest[1],
             partitions: entry.partitions.map((p) => ({
               partition: p.partition, offset: Number(p.offset),
             })).sort((a, b) => a.partition - b.partition) });
    } else {
      usage();
    }
  } finally {
    await client.disconnect();
  }
}

// kafkajs' ssl and sasl settings from the connection options (none: plaintext).
function security(flags) {
  const settings = {};
  if (flags["--ssl-ca"] !== undefined) {
    settings.ssl = { ca: [fs.readFileSync(flags["--ssl-ca"], "utf-8")] };
  }
  if (flags["--sasl-mechanism"] !== undefined) {
    settings.sasl = { mechanism: flags["--sasl-mechanism"],
                      username: flags["--sasl-username"], password: flags["--sasl-password"] };
  }
  return settings;
}

async function main() {
  const { words, flags } = parse(process.argv.slice(2));
  if (words.length < 2) usage();
  const [broker, command, ...rest] = words;
  const kafka = new Kafka({
    clientId: flags["--client-id"] || "mqlog-tests-kafkajs",
    brokers: [broker],
    connectionTimeout: 3000,
    requestTimeout: 10000,
    retry: { retries: 3 },
    logLevel: logLevel.ERROR,
    logCreator: stderrLog,
    ...security(flags),
  });
  if (command === "produce" && rest.length === 2) {
    await produce(kafka, rest[0], count(rest[1]), flags);
  } else if (command === "consume" && rest.length === 3) {
    if (!(await consume(kafka, rest[0], rest[1], count(rest[2]), flags))) process.exitCode = 1;
  } else if (command === "admin" && rest.length >= 1) {
    await admin(kafka, rest);
  } else {
    usage();
  }
}

main().catch((error) => {
  emit({ op: "error", message: String(error && error.message ? error.message : error) });
  process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
