// The bulk tier's harness: a Verilated DittoCore or DenseCore driven from a stimulus stream
// written by ditto.verif.bulk, with no Python in the simulation loop.
//
// Usage: bulk_sim STIMULUS|- [--backpressure P] [--idle P] [--seed S]
//
// The stimulus is little-endian 32-bit words; ditto/verif/bulk.py writes it and documents
// the format. For each job the harness offers the command, the weight beats and the
// activation beats (weights and activations with an idle cycle before a beat with
// probability --idle), holds the output's ready low with probability --backpressure, and
// checks:
//   - every output beat against the expected one, under the job's mask (the row field
//     always, the values when the job says so);
//   - the output stream's rule: once valid, valid and payload hold until the transfer;
//   - without idle cycles and backpressure, the cycles from the command's transfer to the
//     last output's transfer (inclusive) against the cycle model's count;
//   - the counters after the job's last output, under the header's mask for the traffic.
// It also counts, inside jobs, the coverage bins seen in the RTL: input stalls, output
// backpressure and, for DittoCore, the dispatch FIFO full and empty mid-tile
// (ditto/verif/coverage.py). The first failure is printed to stderr as one line starting
// with "FAIL" (with expected and received payloads in hex for Python to decode) and the exit
// status is 1. Success prints one line to stdout: "jobs=N rows=R cycles=C seconds=S" (S: time
// spent simulating, not waiting for stimulus) and the bins' counts as "name=N".

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "Vtop.h"
#include "verilated.h"
#include "ports.h"  // PORT_*: this core's port names as Verilator spells them
#ifdef DISPATCHER_STALLED  // DittoCore: two of the dispatcher's signals, made public
#include "Vtop___024root.h"
#endif

namespace {

constexpr uint32_t MAGIC = 0x31544244;  // "DBT1"
constexpr uint32_t JOB = 0x214a4f42;    // "BOJ!"
constexpr uint32_t END = 0x21444e45;    // "END!"

[[noreturn]] void fail(const std::string& text) {
    std::fprintf(stderr, "FAIL %s\n", text.c_str());
    std::exit(1);
}

// Port access for every type Verilator uses: 1-8, 9-16, 17-32, 33-64 bits and wide.
void put(CData& port, const uint32_t* w) { port = static_cast<CData>(w[0]); }
void put(SData& port, const uint32_t* w) { port = static_cast<SData>(w[0]); }
void put(IData& port, const uint32_t* w) { port = w[0]; }
void put(QData& port, const uint32_t* w) { port = w[0] | (static_cast<QData>(w[1]) << 32); }
template <std::size_t N> void put(VlWide<N>& port, const uint32_t* w) {
    for (std::size_t i = 0; i < N; ++i) port[i] = w[i];
}
void get(const CData& port, uint32_t* w) { w[0] = port; }
void get(const SData& port, uint32_t* w) { w[0] = port; }
void get(const IData& port, uint32_t* w) { w[0] = port; }
void get(const QData& port, uint32_t* w) {
    w[0] = static_cast<uint32_t>(port);
    w[1] = static_cast<uint32_t>(port >> 32);
}
template <std::size_t N> void get(const VlWide<N>& port, uint32_t* w) {
    for (std::size_t i = 0; i < N; ++i) w[i] = port[i];
}
template <typename T> constexpr uint32_t words_of() { return (sizeof(T) + 3) / 4; }

class Stimulus {
  public:
    explicit Stimulus(const char* path) {
        file_ = std::strcmp(path, "-") == 0 ? stdin : std::fopen(path, "rb");
        if (!file_) fail(std::string("cannot open the stimulus ") + path);
        std::setvbuf(file_, nullptr, _IOFBF, 1 << 20);
    }
    uint32_t word(const char* what) {
        uint32_t w;
        read(&w, 1, what);
        return w;
    }
    void read(uint32_t* to, std::size_t n, const char* what) {
        if (n && std::fread(to, 4, n, file_) != n)
            fail(std::string("the stimulus ends inside ") + what +
                 " (truncated file, or the writer stopped)");
    }
    std::vector<uint32_t> words(std::size_t n, const char* what) {
        std::vector<uint32_t> v(n);
        read(v.data(), n, what);
        return v;
    }

  private:
    FILE* file_;
};

std::string hex(const uint32_t* w, uint32_t n) {
    std::string s;
    char digits[9];
    for (uint32_t i = n; i-- > 0;) {
        std::snprintf(digits, sizeof digits, "%08x", w[i]);
        s += digits;
    }
    return s;
}

bool equal_under(const uint32_t* a, const uint32_t* b, const uint32_t* mask, uint32_t n) {
    for (uint32_t i = 0; i < n; ++i)
        if ((a[i] ^ b[i]) & mask[i]) return false;
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) fail("usage: bulk_sim STIMULUS|- [--backpressure P] [--idle P] [--seed S]");
    double backpressure = 0.0, idle = 0.0;
    uint64_t seed = 0;
    for (int i = 2; i < argc; i += 2) {
        std::string flag = argv[i];
        if (flag[0] == '+') {  // Verilator's own (+verilator+seed+N ...)
            --i;
            continue;
        }
        if (i + 1 >= argc) fail("option " + flag + " needs a value");
        if (flag == "--backpressure") backpressure = std::atof(argv[i + 1]);
        else if (flag == "--idle") idle = std::atof(argv[i + 1]);
        else if (flag == "--seed") seed = std::strtoull(argv[i + 1], nullptr, 10);
        else fail("unknown option " + flag);
    }
    const bool exact_timing = backpressure == 0.0 && idle == 0.0;

    auto context = std::make_unique<VerilatedContext>();
    context->commandArgs(argc, argv);
    auto top = std::make_unique<Vtop>(context.get());
    const uint32_t cmd_w = words_of<decltype(top->PORT_CMD_PAYLOAD)>();
    const uint32_t weights_w = words_of<decltype(top->PORT_WEIGHTS_PAYLOAD)>();
    const uint32_t act_w = words_of<decltype(top->PORT_ACT_PAYLOAD)>();
    const uint32_t out_w = words_of<decltype(top->PORT_OUT_PAYLOAD)>();
    const uint32_t counters_w = words_of<decltype(top->PORT_COUNTERS)>();

    Stimulus in(argv[1]);
    if (in.word("the header") != MAGIC) fail("the stimulus is not a ditto bulk stimulus");
    const uint32_t version = in.word("the header");
    if (version != 1) fail("stimulus version " + std::to_string(version) + ", expected 1");
    const uint32_t widths[5] = {cmd_w, weights_w, act_w, out_w, counters_w};
    const char* names[5] = {"cmd", "weights", "act", "out", "counters"};
    for (int i = 0; i < 5; ++i) {
        const uint32_t w = in.word("the header");
        if (w != widths[i])
            fail(std::string("the stimulus has ") + std::to_string(w) + " words of " +
                 names[i] + ", the model " + std::to_string(widths[i]) +
                 ": it was written for another configuration or core");
    }
    const auto counters_mask =
        in.words(counters_w, "the header");  // exact timing: every counter
    const auto counters_mask_traffic = in.words(counters_w, "the header");
    const auto& mask = exact_timing ? counters_mask : counters_mask_traffic;

    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    auto chance = [&](double p) { return p > 0.0 && uniform(rng) < p; };

    uint64_t cycle = 0;
    std::chrono::duration<double> simulating{0};
    auto tick = [&]() {
        top->PORT_CLK = 1;
        top->eval();
        top->PORT_CLK = 0;
        ++cycle;
    };
    top->PORT_CLK = 0;
    top->PORT_RST = 1;
    top->PORT_CMD_VALID = 0;
    top->PORT_WEIGHTS_VALID = 0;
    top->PORT_ACT_VALID = 0;
    top->PORT_OUT_READY = 0;
    for (int i = 0; i < 3; ++i) {
        top->eval();
        tick();
    }
    top->PORT_RST = 0;

    std::vector<uint32_t> got(out_w), held(out_w), got_counters(counters_w);
    uint64_t jobs = 0, rows_checked = 0, job_cycles = 0;
    uint64_t input_stall = 0, output_backpressure = 0, fifo_full = 0, fifo_empty = 0;
    for (;;) {
        const uint32_t marker = in.word("a job header");
        if (marker == END) break;
        if (marker != JOB) fail("job " + std::to_string(jobs) + ": no job marker; the stimulus "
                                "is malformed");
        const uint32_t rows = in.word("a job header");
        const uint32_t n_weights = in.word("a job header");
        const uint32_t n_acts = in.word("a job header");
        uint64_t predicted = in.word("a job header");
        predicted |= static_cast<uint64_t>(in.word("a job header")) << 32;
        const auto cmd = in.words(cmd_w, "a command");
        const auto weights = in.words(std::size_t(n_weights) * weights_w, "weight beats");
        const auto acts = in.words(std::size_t(n_acts) * act_w, "activation beats");
        const auto expected = in.words(std::size_t(rows) * out_w, "expected outputs");
        const auto out_mask = in.words(out_w, "an output mask");
        const auto counters = in.words(counters_w, "expected counters");
        const std::string label = "job " + std::to_string(jobs);
        const auto started = std::chrono::steady_clock::now();

        put(top->PORT_CMD_PAYLOAD, cmd.data());
        bool cmd_sent = false, weight_offered = false, act_offered = false;
        bool out_held = false, groups_seen = false;
        uint32_t wi = 0, ai = 0, oi = 0;
        uint64_t start = 0, end = 0, waited = 0;
        const uint64_t budget = 50 * (predicted + 100);
        while (oi < rows) {
            top->PORT_CMD_VALID = !cmd_sent;
            if (wi < n_weights && !weight_offered && !chance(idle)) {
                put(top->PORT_WEIGHTS_PAYLOAD, &weights[std::size_t(wi) * weights_w]);
                weight_offered = true;
            }
            top->PORT_WEIGHTS_VALID = weight_offered;
            if (ai < n_acts && !act_offered && !chance(idle)) {
                put(top->PORT_ACT_PAYLOAD, &acts[std::size_t(ai) * act_w]);
                act_offered = true;
            }
            top->PORT_ACT_VALID = act_offered;
            const bool out_ready = !chance(backpressure);
            top->PORT_OUT_READY = out_ready;
            top->eval();

            const bool cmd_fire = !cmd_sent && top->PORT_CMD_READY;
            const bool weight_fire = weight_offered && top->PORT_WEIGHTS_READY;
            const bool act_fire = act_offered && top->PORT_ACT_READY;
            const bool out_valid = top->PORT_OUT_VALID;
            if (cmd_sent) {  // coverage, inside the job
                input_stall += act_offered && !act_fire;
                output_backpressure += out_valid && !out_ready;
#ifdef DISPATCHER_STALLED
                fifo_full += top->rootp->DISPATCHER_STALLED;
                if (top->rootp->DISPATCHER_VALID) groups_seen = true;
                else fifo_empty += groups_seen && ai < n_acts;
#endif
            }
            if (out_held) {
                get(top->PORT_OUT_PAYLOAD, got.data());
                if (!out_valid || std::memcmp(got.data(), held.data(), 4 * out_w) != 0)
                    fail(label + " cycle " + std::to_string(cycle - start) +
                         ": out.valid dropped or out.payload changed before the transfer");
            }
            if (out_valid && out_ready) {
                get(top->PORT_OUT_PAYLOAD, got.data());
                const uint32_t* want = &expected[std::size_t(oi) * out_w];
                if (!equal_under(got.data(), want, out_mask.data(), out_w))
                    fail(label + " out " + std::to_string(oi) + " expected " +
                         hex(want, out_w) + " got " + hex(got.data(), out_w) + " mask " +
                         hex(out_mask.data(), out_w));
                ++oi;
                end = cycle;
            }
            out_held = out_valid && !out_ready;
            if (out_held) get(top->PORT_OUT_PAYLOAD, held.data());
            if (cmd_fire) {
                cmd_sent = true;
                start = cycle;
            }
            if (weight_fire) {
                ++wi;
                weight_offered = false;
            }
            if (act_fire) {
                ++ai;
                act_offered = false;
            }
            tick();
            if (++waited > budget)
                fail(label + ": hangs: " + std::to_string(oi) + " of " + std::to_string(rows) +
                     " output rows after " + std::to_string(waited) + " cycles");
        }
        top->PORT_CMD_VALID = 0;
        top->PORT_WEIGHTS_VALID = 0;
        top->PORT_ACT_VALID = 0;
        top->eval();
        if (wi != n_weights || ai != n_acts)
            fail(label + ": the core gave its last output with " + std::to_string(wi) + " of " +
                 std::to_string(n_weights) + " weight beats and " + std::to_string(ai) +
                 " of " + std::to_string(n_acts) + " activation beats taken");
        const uint64_t measured = end - start + 1;
        if (exact_timing && measured != predicted)
            fail(label + " cycles: " + std::to_string(measured) + " from command to last output, "
                 "the cycle model predicts " + std::to_string(predicted));
        get(top->PORT_COUNTERS, got_counters.data());
        if (!equal_under(got_counters.data(), counters.data(), mask.data(), counters_w))
            fail(label + " counters expected " + hex(counters.data(), counters_w) + " got " +
                 hex(got_counters.data(), counters_w) + " mask " + hex(mask.data(), counters_w));
        simulating += std::chrono::steady_clock::now() - started;
        ++jobs;
        rows_checked += rows;
        job_cycles += measured;
    }
    top->final();
    std::printf("jobs=%llu rows=%llu cycles=%llu seconds=%.6f input_stall=%llu "
                "output_backpressure=%llu",
                static_cast<unsigned long long>(jobs),
                static_cast<unsigned long long>(rows_checked),
                static_cast<unsigned long long>(job_cycles), simulating.count(),
                static_cast<unsigned long long>(input_stall),
                static_cast<unsigned long long>(output_backpressure));
#ifdef DISPATCHER_STALLED
    std::printf(" fifo_full=%llu fifo_empty=%llu", static_cast<unsigned long long>(fifo_full),
                static_cast<unsigned long long>(fifo_empty));
#endif
    std::printf("\n");
    return 0;
}
