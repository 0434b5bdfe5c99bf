# A stand-in for Homebrew's formula DSL, as far as the generated formula uses it, so that the
# formula a release carries is run here the way `brew install` runs it (Homebrew itself is
# installed from GitHub, which this machine cannot reach).
#
#   ruby formula.rb FORMULA OS CPU           prints what Homebrew would take for OS/CPU (JSON)
#   ruby formula.rb FORMULA OS CPU STAGED PREFIX
#                                            also runs `install` in STAGED (the archive's
#                                            one folder, where Homebrew changes directory)
#                                            into PREFIX, then the formula's `test` block
#
# Where it differs from Homebrew: no download (the caller downloads `url` and checks `sha256`),
# no sandbox, no `brew audit` style rules; `bin.install` copies the file and keeps its mode.
require "fileutils"
require "json"

class Formula
  class << self
    attr_accessor :target_os, :target_cpu

    def fields
      @fields ||= { "depends_on" => [] }
    end

    %w[desc homepage version url sha256].each do |name|
      define_method(name) { |value| fields[name] = value }
    end

    def license(value = nil, any_of: nil)
      fields["license"] = any_of ? { "any_of" => any_of } : value
    end

    def depends_on(what)
      fields["depends_on"] << what.to_s
    end

    def on_macos
      yield if Formula.target_os == "macos"
    end

    def on_linux
      yield if Formula.target_os == "linux"
    end

    def on_arm
      yield if Formula.target_cpu == "arm"
    end

    def on_intel
      yield if Formula.target_cpu == "intel"
    end

    def test(&block)
      @test_block = block
    end

    attr_reader :test_block
  end

  class Bin
    def initialize(path)
      @path = path
    end

    def install(file)
      FileUtils.mkdir_p(@path)
      FileUtils.cp(file, @path, preserve: true)
    end

    def to_s
      @path
    end
  end

  def initialize(prefix)
    @prefix = prefix
  end

  def bin
    Bin.new(File.join(@prefix, "bin"))
  end

  def version
    self.class.fields["version"]
  end

  def shell_output(command)
    output = `#{command}`
    raise "#{command} exited #{$?.exitstatus}" unless $?.success?
    output
  end

  def assert_match(expected, actual)
    raise "#{actual.inspect} does not contain #{expected.inspect}" unless actual.include?(expected)
  end
end

path, os, cpu, staged, prefix = ARGV
Formula.target_os = os
Formula.target_cpu = cpu
before = ObjectSpace.each_object(Class).select { |k| k < Formula }
load path
formula = (ObjectSpace.each_object(Class).select { |k| k < Formula } - before).first
raise "#{path} defines no Formula subclass" if formula.nil?

result = formula.fields.merge("class" => formula.name)
if staged
  instance = formula.new(prefix)
  Dir.chdir(staged) { instance.install }
  instance.instance_eval(&formula.test_block)
  result["tested"] = true
end
puts JSON.generate(result)
