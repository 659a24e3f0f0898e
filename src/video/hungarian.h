// Optimal assignment (the Hungarian method, O(n^2 m) with potentials).
//
// Given a rows x cols cost matrix, returns for each row the column it is assigned
// to (or -1), minimising the total cost; every row gets a column when rows <= cols,
// every column a row otherwise. Costs must be finite. Pure function, thread-safe.
#pragma once

#include <vector>

namespace ns::video {

std::vector<int> SolveAssignment(const std::vector<std::vector<double>>& cost);

// Total cost of an assignment as returned above (rows assigned -1 count 0).
double AssignmentCost(const std::vector<std::vector<double>>& cost, const std::vector<int>& assignment);

}  // namespace ns::video
