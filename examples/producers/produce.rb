#!/usr/bin/env ruby
# frozen_string_literal: true

# Enqueues one bg job from Ruby with the redis gem (Debian: ruby-redis; gem install redis).
#
#     produce.rb CLASS [ARG] [-q QUEUE] [--in SECONDS] [--retries N]
#
# Prints the job's UUID. ARG (default {}) is stored byte for byte. With --in the job is delayed:
# it goes into the scheduled set and a bg-watcher moves it to the ready list when due. The Redis
# server is $BG_REDIS_URL, else $REDIS_URL, else redis://127.0.0.1:6379/0; the namespace is
# $BG_NAMESPACE, else bg. Bad input exits 2, a Redis error exits 1. The keys and fields are
# those of docs/schema.md.

require "optparse"
require "redis"
require "securerandom"

# bg's rule for queue names (1 to 128) and namespaces (1 to 64): bg's programs refuse others.
QUEUE = /\A[A-Za-z0-9_.-]{1,128}\z/
NAMESPACE = /\A[A-Za-z0-9_.-]{1,64}\z/
SECONDS = /\A[0-9]+(?:\.[0-9]+)?\z/
COUNT = /\A[0-9]+\z/
MAX_MS = 2**53 # what bg accepts, so the due time stays an exact integer everywhere

def usage_error(parser, message)
  warn "produce.rb: #{message}", parser.banner
  exit 2
end

# An environment variable, where an empty one counts as unset, as bg's programs do.
def env(name, default)
  value = ENV.fetch(name, "")
  value.empty? ? default : value
end

# Writes the job and makes it visible in one MULTI/EXEC, so a producer that dies halfway leaves
# nothing behind; returns the job's UUID.
def enqueue(redis, ns, queue, cls, arg, delay_ms: nil, retries: nil)
  job = SecureRandom.uuid # lowercase, random (version 4): bg drops any other kind
  seconds, micros = redis.time # the server's clock, the one bg's programs compare against
  now = seconds * 1000 + micros / 1000
  fields = { "que" => queue, "cls" => cls, "arg" => arg, "qat" => now }
  fields["rty"] = retries if retries
  fields["pat"] = now + delay_ms if delay_ms
  redis.multi do |tx|
    tx.hset("#{ns}:jobs:#{job}", fields)
    if delay_ms
      tx.zadd("#{ns}:scheduled:#{queue}", fields["pat"], job)
    else
      tx.rpush("#{ns}:ready:#{queue}", job)
    end
    tx.sadd?("#{ns}:queues", queue) # so bg-cli status and the watchers know it at once
  end
  job
end

options = { queue: "default" }
parser = OptionParser.new do |o|
  o.banner = "usage: produce.rb CLASS [ARG] [-q QUEUE] [--in SECONDS] [--retries N]"
  o.on("-q", "--queue QUEUE", "the queue (default: default)") { |v| options[:queue] = v }
  o.on("--in SECONDS", "run it this many seconds from now (decimals allowed)") do |v|
    options[:in] = v
  end
  o.on("--retries N", "retry it at most N times") { |v| options[:retries] = v }
  o.on("-h", "--help", "show this help") do
    puts o
    exit 0
  end
end
# The arguments as bytes, to be stored exactly as given, even where they are not UTF-8.
ARGV.map!(&:b)
begin
  parser.parse!
rescue OptionParser::ParseError => e
  usage_error(parser, e.message)
end
usage_error(parser, "CLASS is missing") if ARGV.empty?
usage_error(parser, "too many arguments") if ARGV.size > 2
cls, arg = ARGV[0], ARGV.fetch(1, "{}")

ns = env("BG_NAMESPACE", "bg")
unless ns.match?(NAMESPACE)
  usage_error(parser,
              "invalid namespace #{ns.inspect} in $BG_NAMESPACE: 1 to 64 of A-Z a-z 0-9 _ . -")
end
queue = options[:queue]
unless queue.match?(QUEUE)
  usage_error(parser, "invalid queue #{queue.inspect}: 1 to 128 of A-Z a-z 0-9 _ . -")
end
if options[:in]
  ms = options[:in].match?(SECONDS) ? Float(options[:in]) * 1000 : -1
  unless ms.between?(0, MAX_MS)
    usage_error(parser,
                "invalid --in #{options[:in].inspect}: a number of seconds such as 30 or 1.5")
  end
  delay_ms = ms.round
end
retries = options[:retries]
if retries && !(retries.match?(COUNT) && retries.to_i <= 2**31 - 1)
  usage_error(parser, "invalid --retries #{retries.inspect}: a whole number from 0 to 2147483647")
end

url = env("BG_REDIS_URL", env("REDIS_URL", "redis://127.0.0.1:6379/0"))
begin
  redis = Redis.new(url: url)
rescue ArgumentError, URI::Error => e
  warn "produce.rb: invalid Redis URL: #{e.message}"
  exit 2
end
begin
  puts enqueue(redis, ns, queue, cls, arg, delay_ms: delay_ms, retries: retries&.to_i)
rescue Redis::BaseError => e
  warn "produce.rb: #{e.message}"
  exit 1
ensure
  redis.close
end
