# Loads the Vagrantfile with a recording stand-in for Vagrant's configuration API and
# prints the machines it defines as JSON:
# {name: {box:, hostname:, ip:, libvirt: {memory:, disks:, watchdog:}, virtualbox: {...}}}.
require "json"

# Accepts and ignores any setting it is not asked about.
class Anything
  def method_missing(*) = self
  def respond_to_missing?(*) = true
end

class Provider < Anything
  attr_accessor :memory
  attr_reader :disks

  def initialize
    @disks = 0
  end

  attr_reader :watchdog_model

  def storage(*, **)
    @disks += 1
  end

  def watchdog(model:, **)
    @watchdog_model = model
  end
end

class Machine < Anything
  def initialize(record)
    @record = record
    @vbox_disks = 0
  end

  def vm = self

  def box=(name)
    @record["box"] = name
  end

  def hostname=(name)
    @record["hostname"] = name
  end

  def network(_kind, ip:, **)
    @record["ip"] = ip
  end

  def disk(*, **)
    @vbox_disks += 1
  end

  def provider(name, &block)
    settings = Provider.new
    @vbox_disks = 0
    block.call(settings)
    @record[name] = { "memory" => settings.memory, "disks" => settings.disks + @vbox_disks,
                      "watchdog" => settings.watchdog_model }
  end
end

module Vagrant
  MACHINES = {}

  class Top < Anything
    def vm = self

    def define(name, &block)
      block.call(Machine.new(MACHINES[name] = {}))
    end
  end

  def self.configure(_version)
    yield Top.new
  end
end

load ARGV.fetch(0)
puts JSON.generate(Vagrant::MACHINES)
