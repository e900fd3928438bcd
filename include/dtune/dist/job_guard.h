// The one top-level error boundary: runs a command body, reports any exception on this rank,
// and when running under MPI with peers, aborts the whole job so nobody hangs in a collective.
#pragma once

#include <functional>

namespace dtune::dist {

// Returns body()'s exit code, or kExitError after reporting an exception (which, with more than
// one rank, never returns: MPI_Abort ends every rank).
int run_guarded(const std::function<int()>& body);

}  // namespace dtune::dist
