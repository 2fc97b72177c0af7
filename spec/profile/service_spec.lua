-- profile.service as other modules use it: get(user_id) in the API shape and
-- matching_profile(user_id) fed straight into lp.match.
local H = require "spec.helpers.server"
local A = require "spec.helpers.auth"
local cjson = require "cjson.safe"

describe("profile.service", function()
  local srv

  setup(function() srv = H.start { fixtures = { "spec/profile/fixtures" } } end)
  teardown(function() srv:stop() end)

  it("get(user_id) is what GET /profile answers", function()
    local u = A.register(srv, A.email("svc"))
    srv:request("PUT", "/api/v1/profile", { json = { householdSize = 3, interests = {} }, headers = A.bearer(u.token) })
    local via_route = srv:request("GET", "/api/v1/profile", { headers = A.bearer(u.token) })
    local via_service = srv:request("GET", "/t/profile/" .. u.id)
    assert.are.equal(200, via_service.status)
    assert.are.same(via_route.json, via_service.json)
    assert.are.equal(2, via_service.json.version)
    assert.are.equal(cjson.null, via_service.json.birthDate)
    assert.is_truthy(via_service.body:find('"interests":[]', 1, true))
  end)

  it("matching_profile(user_id) is the table lp.match takes: unknowns absent, lists as arrays", function()
    local u = A.register(srv, A.email("match"))
    local r = srv:request("GET", "/t/matching/" .. u.id)
    assert.are.equal(200, r.status, r.body)
    assert.are.same({ "id=number", "version=number" }, r.json.keys)
    assert.are.equal("possible", r.json.eligibility)
    assert.are.same({ u.id }, r.json.reversePossible)

    local birth = string.format("%04d-03-01", 2026 - 25)
    local put = srv:request("PUT", "/api/v1/profile", { headers = A.bearer(u.token), json = {
      birthDate = birth, regionCode = "11680", employmentStatus = "unemployed", education = "university_graduate",
      major = "business", specialStatus = {}, maritalStatus = "single", householdSize = 1,
      housingType = "monthly_rent", annualIncome = 20000000, interests = { "housing" } } })
    assert.are.equal(200, put.status, put.body)
    r = srv:request("GET", "/t/matching/" .. u.id)
    assert.are.equal(200, r.status, r.body)
    local p = r.json.profile
    assert.are.equal(u.id, p.id)
    assert.are.equal(2, p.version)
    assert.are.equal(birth, p.birthDate)
    assert.are.equal("11680", p.regionCode)
    assert.are.equal(20000000, p.annualIncome)
    assert.are.equal(1, p.householdSize)
    assert.are.equal("unemployed", p.employmentStatus)
    assert.are.same({ "housing" }, p.interests)
    assert.are.equal("eligible", r.json.eligibility)
    assert.are.same({ u.id }, r.json.reverseEligible)
  end)
end)
