-- Argo CD health check for livesim.dev/SimCluster and livesim.dev/SimSweep (resource.customizations,
-- keys "livesim.dev/SimCluster" and "livesim.dev/SimSweep", field health.lua: the same script for
-- both, as both report the same conditions). Argo CD runs it with the live object in `obj` and reads
-- back a table { status = ..., message = ... }.
--
--   Healthy      the run (every trial of the sweep) succeeded: condition Complete=True (or, without
--                conditions, phase Succeeded)
--   Degraded     the run or sweep failed: Failed=True or Stalled=True (or phase Failed), with its message
--   Progressing  anything else: no status yet, the operator has not observed the latest
--                metadata.generation, or the run is pending, scheduling or running (a sweep's trials
--                are running)
--
-- Written for gopher-lua (Lua 5.1, what Argo CD embeds) and Lua 5.3 alike: numbers are formatted
-- with %d, never concatenated.

local kind = "SimCluster"
local what = "simulation"
if obj.kind == "SimSweep" then
  kind = "SimSweep"
  what = "sweep"
end

local hs = { status = "Progressing", message = "Waiting for the livesim operator to reconcile the " .. kind }

local function condition(conditions, conditionType)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

local function isTrue(c)
  return c ~= nil and c.status == "True"
end

-- The condition's message, else its reason, else a default.
local function describe(c, default)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c ~= nil and c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return default
end

if obj.status == nil then
  return hs
end
local status = obj.status

-- kstatus: a status written for an older spec says nothing about the current one.
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil then
  local observed = status.observedGeneration
  if observed == nil or observed < generation then
    hs.message = string.format("Waiting for the livesim operator to observe generation %d", generation)
    return hs
  end
end

local conditions = status.conditions
local failed = condition(conditions, "Failed")
local stalled = condition(conditions, "Stalled")
local complete = condition(conditions, "Complete")

if isTrue(failed) then
  hs.status = "Degraded"
  hs.message = describe(failed, status.message or ("The " .. what .. " failed"))
  return hs
end
if isTrue(stalled) then
  hs.status = "Degraded"
  hs.message = describe(stalled, status.message or ("The " .. what .. " is stalled"))
  return hs
end
if isTrue(complete) then
  hs.status = "Healthy"
  hs.message = describe(complete, status.message or ("The " .. what .. " succeeded"))
  return hs
end

-- An older operator, or a status written by hand, may carry the phase alone.
if conditions == nil or #conditions == 0 then
  if status.phase == "Failed" then
    hs.status = "Degraded"
    hs.message = status.message or ("The " .. what .. " failed")
    return hs
  end
  if status.phase == "Succeeded" then
    hs.status = "Healthy"
    hs.message = status.message or ("The " .. what .. " succeeded")
    return hs
  end
end

-- Pending, Scheduling or Running: say what the operator is waiting for, or how far the run is.
local reconciling = condition(conditions, "Reconciling")
local detail = nil
if isTrue(reconciling) and reconciling.message ~= nil and reconciling.message ~= "" then
  detail = reconciling.message
elseif status.message ~= nil and status.message ~= "" then
  detail = status.message
end
if status.phase ~= nil and detail ~= nil then
  hs.message = status.phase .. ": " .. detail
elseif status.phase ~= nil then
  hs.message = status.phase
elseif detail ~= nil then
  hs.message = detail
end
return hs
