// The one top-level error boundary: runs a command body, reports any exception on this rank,
// and when running under MPI with peers, aborts the whole job so nobody hangs in a collective.
#pragma once

#include <functional>

namespace dtune::dist {

// Returns body()'s exit code, or kExitError after reporting an exception (which, with more than
// one rank, never returns: MPI_Abort ends every rank). Between the report and the abort it runs
// the cleanups registered with run_after_error_report.
int run_guarded(const std::function<int()>& body);

// For a resource destroyed while an error unwinds the stack whose release must come after the
// error is printed (an NCCL communicator: ncclCommAbort, since ncclCommDestroy could wait for
// peers forever and the error would never be seen). run_guarded runs cleanup once, after
// reporting, in registration order; an error handled elsewhere leaves it unrun (the process is
// about to end anyway).
void run_after_error_report(std::function<void()> cleanup);

}  // namespace dtune::dist
